import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';

const TYPES: Record<string, string> = { '.png': 'image/png', '.svg': 'image/svg+xml', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.gif': 'image/gif', '.webp': 'image/webp' };

/** At most this large: the logo is read into memory once and sent with every first page. */
const MAX_BYTES = 512 * 1024;

/**
 * The logo on the portal's pages (portal.organisation.logoFile), read once at start and
 * served by the portal: the pages then make no request to a third party (which would
 * learn who reads secure mail, and when). A problem stops the start, naming the key.
 */
export async function loadLogo(file: string | undefined): Promise<{ bytes: Buffer; type: string } | undefined> {
  if (!file) return undefined;
  const type = TYPES[extname(file).toLowerCase()];
  if (!type) throw new Error(`portal.organisation.logoFile: ${file} is not a .png, .svg, .jpg, .gif or .webp file`);
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    throw new Error(`portal.organisation.logoFile: cannot read ${file}: ${(err as Error).message} (fix the path or remove the key)`);
  }
  if (bytes.length > MAX_BYTES) throw new Error(`portal.organisation.logoFile: ${file} is ${bytes.length} bytes; at most ${MAX_BYTES} (make it smaller)`);
  return { bytes, type };
}
