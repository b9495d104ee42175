import { randomBytes } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { parseKeyMaterial, type MasterKey } from './envelope-crypto.js';
import { writeFileDurably } from './durable-file.js';

export interface ConfiguredKey {
  id: string;
  key: string;
}

/**
 * Master keys as configured (values may come from ${env:...} or ${file:...}); with none
 * configured, a development key made once in `devKeyFile` (callers warn about it).
 * `configPath` names the setting in error messages, e.g. "portal.masterKeys".
 */
export async function loadMasterKeyList(configured: ConfiguredKey[], configPath: string, devKeyFile: string): Promise<{ keys: MasterKey[]; development: boolean }> {
  if (configured.length) {
    return {
      keys: configured.map((k, i) => {
        const key = parseKeyMaterial(k.key);
        if (!key) throw new Error(`${configPath}.${i}.key: must be 32 bytes, base64 (or hex:...); make one with: openssl rand -base64 32`);
        return { id: k.id, key };
      }),
      development: false,
    };
  }
  let text: string;
  try {
    text = await readFile(devKeyFile, 'utf8');
  } catch {
    await mkdir(dirname(devKeyFile), { recursive: true, mode: 0o700 });
    text = randomBytes(32).toString('base64');
    await writeFileDurably(devKeyFile, text, 0o600);
  }
  const key = parseKeyMaterial(text);
  if (!key) throw new Error(`${devKeyFile} does not hold a 32-byte key`);
  return { keys: [{ id: 'dev', key }], development: true };
}
