import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inspectMessage } from '../../src/inspect/inspector.js';
import { DEFAULT_INSPECT_LIMITS } from '../../src/inspect/parse.js';
import { findProgram } from '../helpers/programs.js';
import { crlf, detectors, inspectRaw } from './inspect-raw.js';

/**
 * Opaque-signed S/MIME carries its content inside the PKCS#7 structure, base64 in the
 * message: PHI in it is found only when the signature is unwrapped. The messages are made
 * by OpenSSL, as a real signer makes them: `smime -sign -nodetach` (DER, the older
 * application/x-pkcs7-mime) and `cms -sign -nodetach -stream` (BER with indefinite lengths,
 * the content cut into pieces, as streaming signers write it). An EC key: the reader must
 * not depend on the signer's key type.
 */
const openssl = findProgram('openssl');
const SSN = '524-12-3456';
const ENTITY = crlf(`Content-Type: text/plain; charset=utf-8\n\nPatient SSN ${SSN}, see you Monday.\n`);

// Skipped only on a developer machine without OpenSSL; under CI=true findProgram throws.
describe.skipIf(!openssl)('opaque-signed S/MIME is unwrapped and its content inspected', () => {
  let dir = '';
  const run = (args: string[], input: Buffer) => execFileSync(openssl!, args, { input, cwd: dir, stdio: ['pipe', 'pipe', 'pipe'] });
  const sign = (entity: Buffer) => run(['smime', '-sign', '-nodetach', '-signer', 'cert.pem', '-inkey', 'key.pem'], entity);
  const signStreamed = (entity: Buffer) => run(['cms', '-sign', '-nodetach', '-stream', '-signer', 'cert.pem', '-inkey', 'key.pem'], entity);
  const asMessage = (smime: Buffer) => Buffer.concat([crlf('From: dr@clinic.test\nTo: lab@lab.test\nSubject: results\n'), Buffer.from(smime.toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1')]);

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'postern-smime-'));
    execFileSync(openssl!, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=dr@clinic.test', '-days', '2', '-keyout', 'key.pem', '-out', 'cert.pem'], { cwd: dir, stdio: 'ignore' });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('smime -sign -nodetach (application/x-pkcs7-mime; smime-type=signed-data): the SSN inside is found', async () => {
    const raw = asMessage(sign(ENTITY));
    expect(raw.toString()).toContain('application/x-pkcs7-mime; smime-type=signed-data');
    expect(raw.toString()).not.toContain(SSN); // only inside the base64 signature
    expect(await inspectRaw(raw)).toEqual({ hits: ['ssn'], error: undefined, unscanned: undefined });
    // The same message streamed (the queue's body stream) goes through the splitter instead of the one-part fast path.
    const streamed = await inspectMessage(Readable.from([raw.subarray(0, 300), raw.subarray(300)]), raw.length, detectors);
    expect(streamed.detectors.hits.map((h) => h.detector)).toEqual(['ssn']);
  });

  it('cms -sign -stream (BER, indefinite lengths, content in pieces): found, also past the first piece', async () => {
    const filler = 'The quick brown fox jumps over the lazy dog.\n'.repeat(400); // ~18 KB: many pieces
    const raw = asMessage(signStreamed(crlf(`Content-Type: text/plain\n\n${filler}Patient SSN ${SSN}\n`)));
    expect(raw.toString()).toContain('application/pkcs7-mime; smime-type=signed-data');
    expect(await inspectRaw(raw)).toEqual({ hits: ['ssn'], error: undefined, unscanned: undefined });
  });

  it('the signed entity is read as MIME: HTML and a forwarded message inside it are inspected too', async () => {
    const entity = crlf(
      `Content-Type: multipart/mixed; boundary="in"\n\n--in\nContent-Type: text/html\n\n<p>Medicare 1EG4-<b>TE5</b>-MK73</p>\n--in\nContent-Type: message/rfc822\n\nSubject: fwd\n\nPatient SSN ${SSN}\n--in--\n`,
    );
    expect((await inspectRaw(asMessage(sign(entity)))).hits).toEqual(['ssn', 'mbi']);
  });

  it('a .p7m attachment declared application/octet-stream, without smime-type, is opened by what it holds', async () => {
    const der = run(['cms', '-sign', '-nodetach', '-binary', '-outform', 'DER', '-signer', 'cert.pem', '-inkey', 'key.pem'], ENTITY);
    const raw = crlf(
      `From: dr@clinic.test\nSubject: signed file\nContent-Type: multipart/mixed; boundary="BB"\n\n--BB\nContent-Type: text/plain\n\nSee the attachment.\n--BB\nContent-Type: application/octet-stream\nContent-Disposition: attachment; filename="note.p7m"\nContent-Transfer-Encoding: base64\n\n${der.toString('base64').replace(/.{76}/g, '$&\n')}\n--BB--\n`,
    );
    expect(await inspectRaw(raw)).toEqual({ hits: ['ssn'], error: undefined, unscanned: undefined });
  });

  it('signed, then encrypted inside: the encrypted part makes the message unscanned', async () => {
    const inner = run(['cms', '-encrypt', '-aes256', 'cert.pem'], ENTITY);
    const raw = asMessage(sign(Buffer.from(inner.toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1')));
    expect(await inspectRaw(raw)).toMatchObject({ hits: [], error: undefined, unscanned: expect.stringMatching(/encrypted \(PKCS#7 enveloped-data\)/) });
  });
});

/**
 * Encrypted S/MIME (enveloped-data) cannot be read: the result says so as `unscanned`, the
 * fact the policy already treats as "may hold PHI" (text over the scan budget), so it is
 * never passed as "nothing found"; and not as an error, which would bounce ordinary mail.
 */
// Skipped only on a developer machine without OpenSSL; under CI=true findProgram throws.
describe.skipIf(!openssl)('encrypted S/MIME is an explicit unscanned fact', () => {
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'postern-smime-'));
    execFileSync(openssl!, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=lab@lab.test', '-days', '2', '-keyout', 'key.pem', '-out', 'cert.pem'], { cwd: dir, stdio: 'ignore' });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('cms -encrypt (application/pkcs7-mime; smime-type=enveloped-data): unscanned, no error', async () => {
    const smime = execFileSync(openssl!, ['cms', '-encrypt', '-aes256', 'cert.pem'], { input: ENTITY, cwd: dir });
    const raw = Buffer.concat([crlf('From: dr@clinic.test\nSubject: results\n'), Buffer.from(smime.toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1')]);
    expect(raw.toString()).toContain('smime-type=enveloped-data');
    expect(await inspectRaw(raw)).toEqual({ hits: [], error: undefined, unscanned: 'an S/MIME part is encrypted (PKCS#7 enveloped-data): the gateway cannot read it' });
  });
});

describe('S/MIME bodies that cannot be opened are unscanned, not passed', () => {
  const message = (body: string) => crlf(`From: dr@clinic.test\nSubject: x\nContent-Type: application/pkcs7-mime; smime-type=signed-data; name=smime.p7m\nContent-Transfer-Encoding: base64\n\n${body}\n`);

  it('a body that is not PKCS#7', async () => {
    expect(await inspectRaw(message(Buffer.from('Patient SSN, honest').toString('base64')))).toMatchObject({ hits: [], error: undefined, unscanned: expect.stringMatching(/^an S\/MIME \(PKCS#7\) part could not be read/) });
  });

  it('a body over limits.maxSmimeBytes', async () => {
    const limits = { ...DEFAULT_INSPECT_LIMITS, maxSmimeBytes: 1000 };
    expect(await inspectRaw(message(Buffer.alloc(3000, 0x30).toString('base64')), limits)).toMatchObject({ unscanned: 'an S/MIME part is larger than 1000 bytes, the most opened for inspection' });
  });
});
