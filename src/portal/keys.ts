import { randomBytes } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { PosternConfig } from '../config/schema.js';
import { parseKeyMaterial, type MasterKey } from './crypto.js';
import { writeFileDurably } from './files.js';

/**
 * The portal's master keys from config (values may be ${env:...} or ${file:...}), or a
 * development key made once under <dataDir>/portal/master.key (the start-up log warns).
 */
export async function loadMasterKeys(config: PosternConfig, dataDir: string): Promise<{ keys: MasterKey[]; development: boolean }> {
  const configured = config.portal.masterKeys;
  if (configured.length) {
    return {
      keys: configured.map((k, i) => {
        const key = parseKeyMaterial(k.key);
        if (!key) throw new Error(`portal.masterKeys.${i}.key: must be 32 bytes, base64 (or hex:...); make one with: openssl rand -base64 32`);
        return { id: k.id, key };
      }),
      development: false,
    };
  }
  const dir = join(dataDir, 'portal');
  const file = join(dir, 'master.key');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    text = randomBytes(32).toString('base64');
    await writeFileDurably(file, text, 0o600);
  }
  const key = parseKeyMaterial(text);
  if (!key) throw new Error(`${file} does not hold a 32-byte key`);
  return { keys: [{ id: 'dev', key }], development: true };
}
