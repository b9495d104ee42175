import { join } from 'node:path';
import type { PosternConfig } from '../config/schema.js';
import { loadMasterKeyList } from '../common/master-keys.js';
import type { MasterKey } from './crypto.js';

/**
 * The portal's master keys from config (values may be ${env:...} or ${file:...}), or a
 * development key made once under <dataDir>/portal/master.key (the start-up log warns).
 */
export function loadMasterKeys(config: PosternConfig, dataDir: string): Promise<{ keys: MasterKey[]; development: boolean }> {
  return loadMasterKeyList(config.portal.masterKeys, 'portal.masterKeys', join(dataDir, 'portal', 'master.key'));
}
