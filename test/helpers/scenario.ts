import { afterAll, afterEach, beforeEach } from 'vitest';
import { expectArchiveMatches } from './archive-check.js';
import { startTestGateway, type TestGateway } from './gateway.js';
import { startMxHosts, TestMx } from './mx-server.js';

interface Stoppable {
  stop(): Promise<void>;
}

/** Stops them all, newest first, even when one fails; then throws the first failure. */
async function stopAll(list: Stoppable[]): Promise<void> {
  const failures: unknown[] = [];
  for (const x of list.splice(0).reverse()) await x.stop().catch((err: unknown) => failures.push(err));
  if (failures.length) throw failures[0];
}

export interface ScenarioOptions {
  /**
   * Check each gateway's compliance archive when it stops (test/helpers/archive-check.ts):
   * every message it took and began to deliver is archived with the right metadata, and
   * no archive file holds message text. A problem fails the test (or the file, for a
   * gateway started in beforeAll). On by default; `false` only for a test that breaks
   * the archive on purpose.
   */
  checkArchive?: boolean;
}

/**
 * Gateways and receiving MXs started through this are stopped for you: those started
 * inside a test after that test, those started in beforeAll after the whole file.
 */
export function scenario(options: ScenarioOptions = {}) {
  const perTest: Stoppable[] = [];
  const perSuite: Stoppable[] = [];
  let inTest = false;
  beforeEach(() => {
    inTest = true;
  });
  afterEach(async () => {
    inTest = false;
    await stopAll(perTest);
  });
  afterAll(async () => {
    await stopAll(perSuite);
  });
  const track = <T extends Stoppable>(x: T): T => {
    (inTest ? perTest : perSuite).push(x);
    return x;
  };
  return {
    async gateway(overrides: Record<string, unknown> = {}): Promise<TestGateway> {
      return track(await startTestGateway(overrides, undefined, options.checkArchive === false ? {} : { afterStop: expectArchiveMatches }));
    },
    async mx(opts: ConstructorParameters<typeof TestMx>[0] = {}): Promise<TestMx> {
      return track(await new TestMx(opts).start());
    },
    /** MXs on several loopback addresses (127.0.0.2–7) sharing one port, for delivery.mxPort: see startMxHosts. */
    async mxHosts(specs: Parameters<typeof startMxHosts>[0]): Promise<TestMx[]> {
      return (await startMxHosts(specs)).map(track);
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
