import { afterAll, afterEach, beforeEach } from 'vitest';
import { startTestGateway, type TestGateway } from './gateway.js';
import { TestMx } from './mx-server.js';

interface Stoppable {
  stop(): Promise<void>;
}

/**
 * Gateways and receiving MXs started through this are stopped for you: those started
 * inside a test after that test, those started in beforeAll after the whole file.
 */
export function scenario() {
  const perTest: Stoppable[] = [];
  const perSuite: Stoppable[] = [];
  let inTest = false;
  beforeEach(() => {
    inTest = true;
  });
  afterEach(async () => {
    inTest = false;
    for (const x of perTest.splice(0).reverse()) await x.stop();
  });
  afterAll(async () => {
    for (const x of perSuite.splice(0).reverse()) await x.stop();
  });
  const track = <T extends Stoppable>(x: T): T => {
    (inTest ? perTest : perSuite).push(x);
    return x;
  };
  return {
    async gateway(overrides: Record<string, unknown> = {}): Promise<TestGateway> {
      return track(await startTestGateway(overrides));
    },
    async mx(opts: ConstructorParameters<typeof TestMx>[0] = {}): Promise<TestMx> {
      return track(await new TestMx(opts).start());
    },
    /** Stops an MX now (e.g. to leave its port without a listener). */
    async stopMx(m: TestMx): Promise<void> {
      await m.stop();
      for (const list of [perTest, perSuite]) {
        const i = list.indexOf(m);
        if (i !== -1) list.splice(i, 1);
      }
    },
  };
}
