import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { PosternConfig } from '../config/schema.js';
import { createLogger } from '../events/logger.js';
import { startKeys, type KeyParts } from './start.js';

/**
 * The key store as `policy explain` reads it (the CLI and the admin API): the same store
 * the gateway uses, read only, and no discovery — explaining must never ask WKD or a
 * keyserver. Undefined when there is no store yet (nothing is created). Close the store.
 */
export async function storeOnlyKeys(config: PosternConfig): Promise<KeyParts | undefined> {
  const dataDir = resolve(config.dataDir);
  if (config.queue.backend !== 'redis' && !existsSync(join(dataDir, 'keys'))) return undefined;
  const storeOnly = { ...config, keys: { ...config.keys, discovery: ['store' as const] } };
  return startKeys(storeOnly, dataDir, async () => [], createLogger('silent'));
}
