import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { scenario } from '../helpers/scenario.js';
import { sendMail } from '../helpers/smtp-client.js';
import { crlf, inspectRaw } from './inspect-raw.js';

const PDF = Buffer.from('%PDF-1.4 binary').toString('base64');
/** A message with one text part and one attachment whose MIME headers are `headers`. */
const withPart = (headers: string, body = PDF) =>
  crlf(`From: dr@client.test\nTo: p@hospital.test\nSubject: Lab results\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b1"\n\n--b1\nContent-Type: text/plain; charset=utf-8\n\nPlease see the attachment.\n--b1\n${headers}\nContent-Transfer-Encoding: base64\n\n${body}\n--b1--\n`);
const forwarded = (inner: Buffer) => withPart('Content-Type: message/rfc822\nContent-Disposition: attachment', inner.toString('base64'));

/**
 * Attachment names are part of what a recipient reads: a sender who names a scan after
 * the patient ("Doe John SSN 524-12-3456.pdf") sends that SSN. The detectors read each
 * part's decoded file name and Content-Description, as they read the subject.
 */
describe('PHI in attachment names raises protection', () => {
  const cases: Record<string, Buffer> = {
    'Content-Disposition filename': withPart('Content-Type: application/pdf; name="x.pdf"\nContent-Disposition: attachment; filename="Doe John SSN 524-12-3456, MRN: 1234567.pdf"'),
    'RFC 2231 filename*': withPart("Content-Type: application/pdf\nContent-Disposition: attachment; filename*=UTF-8''Doe%20John%20SSN%20524-12-3456%20MRN%3A%201234567.pdf"),
    'RFC 2231 continuations (filename*0*, filename*1*)': withPart("Content-Type: application/pdf\nContent-Disposition: attachment;\n filename*0*=UTF-8''Doe%20John%20SSN%20524-12;\n filename*1*=-3456%20MRN%3A%201234567.pdf"),
    'RFC 2047 encoded filename': withPart(`Content-Type: application/pdf\nContent-Disposition: attachment; filename="=?UTF-8?B?${Buffer.from('Doe John SSN 524-12-3456 MRN: 1234567.pdf').toString('base64')}?="`),
    'Content-Type name only, differing from the filename': withPart('Content-Type: application/pdf; name="Doe John SSN 524-12-3456 MRN: 1234567.pdf"\nContent-Disposition: attachment; filename="scan.pdf"'),
    'full-width digits in the name': withPart('Content-Type: application/pdf\nContent-Disposition: attachment; filename="Doe SSN ５２４-１２-３４５６ MRN: １２３４５６７.pdf"'),
    'Content-Description': withPart('Content-Type: application/pdf; name="scan.pdf"\nContent-Description: Doe John SSN 524-12-3456, MRN: 1234567\nContent-Disposition: attachment; filename="scan.pdf"'),
    'inside a forwarded message': forwarded(withPart('Content-Type: application/pdf\nContent-Disposition: attachment; filename="Doe John SSN 524-12-3456 MRN: 1234567.pdf"')),
  };
  for (const [what, raw] of Object.entries(cases)) {
    it(what, async () => expect(await inspectRaw(raw)).toEqual({ hits: ['ssn', 'mrn'], error: undefined, unscanned: undefined }));
  }

  it('an innocent name finds nothing', async () => {
    expect(await inspectRaw(withPart('Content-Type: application/pdf; name="scan-2026-11-23.pdf"\nContent-Disposition: attachment; filename="scan-2026-11-23.pdf"'))).toEqual({ hits: [], error: undefined, unscanned: undefined });
  });
});

describe('PHI in an attachment name, through the gateway', () => {
  const s = scenario();

  it('the phi-detected rule applies: the portal, not TLS', async () => {
    const mx = await s.mx();
    const policy = join(mkdtempSync(join(tmpdir(), 'postern-attachment-names-')), 'policy.yaml');
    writeFileSync(policy, 'phiThreshold: 5\n');
    const gw = await s.gateway({ policy: { file: policy }, delivery: { routes: { '*': { nexthop: `127.0.0.1:${mx.port}`, tls: 'none' } } } });
    const raw = withPart("Content-Type: application/pdf\nContent-Disposition: attachment; filename*=UTF-8''Doe%20John%20SSN%20524-12-3456.pdf");
    const sent = await sendMail(gw.port, { from: 'dr@client.test', to: ['p@hospital.test'], raw });
    expect(sent.ok).toBe(true);
    const inspected = await gw.waitForLog((l) => l.event === 'inspect.done' && l.queueId === sent.queueId);
    expect(inspected).toMatchObject({ score: 5, detectors: [expect.objectContaining({ detector: 'ssn', count: 1 })] });
    expect(await gw.waitForLog((l) => l.event === 'policy.decision' && l.queueId === sent.queueId)).toMatchObject({ rule: 'phi-detected', method: 'portal' });
  });
});
