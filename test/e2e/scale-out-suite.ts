import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import type { ChildGateway } from '../helpers/child-gateway.js';
import type { TestMx } from '../helpers/mx-server.js';
import { DEV_REDIS_URL, deleteKeys, testPrefix } from '../queue/redis-harness.js';

export interface ScaleOutSuite {
  dir: string;
  /** The key prefix of this suite on the development Redis. */
  prefix: string;
  gateways: ChildGateway[];
  mx?: TestMx | undefined;
}

/**
 * What a scale-out suite on the development Redis starts, cleaned up after it whatever
 * happened: its gateway processes (kill -9), its MX, its keys and its directory.
 */
export function scaleOutSuite(name: string): ScaleOutSuite {
  const suite: ScaleOutSuite = { dir: mkdtempSync(join(tmpdir(), `postern-${name}-`)), prefix: testPrefix(), gateways: [] };
  afterAll(async () => {
    for (const g of suite.gateways) g.killAll();
    await suite.mx?.stop();
    await deleteKeys(DEV_REDIS_URL, suite.prefix);
    rmSync(suite.dir, { recursive: true, force: true });
  });
  return suite;
}
