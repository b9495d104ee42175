import { createReadStream, mkdtempSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/events/logger.js';
import { DkimError, DkimSigner } from '../../src/sign/dkim.js';
import { loadDkimKeys, type DkimKey } from '../../src/sign/dkim-keys.js';
import { dkimConfig, makeDkimKey } from '../helpers/dkim.js';

/** The files this process holds open, by path (Linux). */
const openFiles = () =>
  readdirSync('/proc/self/fd').flatMap((fd) => {
    try {
      return [readlinkSync(`/proc/self/fd/${fd}`)];
    } catch {
      return []; // closed while listing (the listing's own descriptor)
    }
  });

/** Waits up to `ms` for nothing to hold `path` open; true when nothing does. */
async function released(path: string, ms = 2000): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 20))) {
    if (!openFiles().includes(path)) return true;
  }
  return false;
}

describe('DKIM signing that fails mid-body', () => {
  it('closes the spool file it was reading: no descriptor left behind per attempt', async () => {
    const key = makeDkimKey('client.test', 'rsa2026');
    const [loaded] = await loadDkimKeys(validateConfig({ hostname: 'postern.test', dkim: dkimConfig([key]) }));
    // No key loadDkimKeys accepts makes mailauth's signer fail mid-body (a key it cannot
    // use is reported after the whole body was read, which closes the file). What does:
    // its body hasher, made when the headers end, for a hash OpenSSL does not have. So
    // this key names one; everything else is the real signer on a real file.
    const unsignable = { ...(loaded as DkimKey), algorithm: 'rsa-sha257' as DkimKey['algorithm'] };
    const signer = new DkimSigner([unsignable], createLogger('silent'));
    // Larger than every buffer between the file and the signer, so reading stops mid-file.
    const path = join(mkdtempSync(join(tmpdir(), 'postern-dkim-release-')), 'body.eml');
    writeFileSync(path, `From: dr@client.test\r\nTo: patient@dest.test\r\nSubject: Results\r\n\r\n${'A line of a long body that goes on and on.\r\n'.repeat(50_000)}`);

    const body = createReadStream(path);
    const outcome = await signer.sign(body, { mailFrom: 'dr@client.test', queueId: 'q-release' }).catch((err: unknown) => err);

    expect(outcome).toBeInstanceOf(DkimError);
    expect((outcome as Error).message).toMatch(/DKIM signing for client\.test failed/);
    expect(await released(path), `${path} still open: ${openFiles().filter((f) => f === path).length} descriptor(s)`).toBe(true);
  });
});
