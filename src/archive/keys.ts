import type { PosternConfig } from '../config/schema.js';
import type { MasterKey } from '../common/envelope-crypto.js';
import { loadMasterKeyList } from '../common/master-keys.js';
import type { ArchiveLayout } from './layout.js';

/** archive.masterKeys, or a development key made once under <dataDir>/archive/master.key. */
export function loadArchiveKeys(config: PosternConfig, layout: ArchiveLayout): Promise<{ keys: MasterKey[]; development: boolean }> {
  return loadMasterKeyList(config.archive.masterKeys, 'archive.masterKeys', layout.masterKeyFile);
}
