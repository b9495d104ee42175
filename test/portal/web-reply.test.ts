import type { AddressInfo } from 'node:net';
import { connect } from 'node:tls';
import { simpleParser } from 'mailparser';
import { Agent, fetch, FormData } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { portalApp, portalApps, type PortalApp } from '../helpers/portal-app.js';

const csrfOf = (html: string) => /name="csrf" value="([^"]+)"/.exec(html)?.[1] as string;
/** From and Reply-To as a mail client reads them. */
async function senderOf(raw: Buffer) {
  const parsed = await simpleParser(raw);
  return { from: parsed.from?.value, replyTo: parsed.replyTo?.value.map((a) => a.address), to: [parsed.to].flat().flatMap((a) => a?.value.map((v) => v.address) ?? []), inReplyTo: parsed.inReplyTo };
}

function original(to: string, cc?: string): Buffer {
  return Buffer.from(`From: "Dr. Ada Carter" <dr.carter@clinic.test>\r\nTo: ${to}\r\n${cc ? `Cc: ${cc}\r\n` : ''}Subject: Your results\r\nMessage-ID: <results-9@clinic.test>\r\n\r\nAll clear.\r\n`);
}

/**
 * Stores a message for `rcpts` (the envelope recipients the portal holds it for), logs in
 * as `identity`, sends a secure reply (to all, when `all`); returns what was queued.
 */
async function reply(portal: PortalApp, rcpts: string | string[], raw: string | Buffer, identity: string, all = false) {
  const recipients = [rcpts].flat();
  const m = await portal.files.putMessage(typeof raw === 'string' ? original(raw) : raw, { createdAt: Date.now(), expiresAt: Date.now() + 60_000, sender: 'dr.carter@clinic.test', recipients, queueId: 'Q1', kind: 'received' });
  const cookie = await portal.loggedIn(identity);
  const page = await portal.app.inject({ method: 'GET', url: `/message/${m.id}`, headers: { cookie } });
  const before = portal.queued.length;
  const sent = await portal.app.inject({ method: 'POST', url: `/message/${m.id}/reply`, headers: { cookie }, payload: { csrf: csrfOf(page.body), text: 'Thank you, doctor.', ...(all ? { all: '1' } : {}) } });
  expect(sent.statusCode).toBe(200);
  expect(portal.queued).toHaveLength(before + 1);
  return portal.queued[before]!;
}

/** Cc as a mail client reads it. */
const ccOf = async (raw: Buffer) => [(await simpleParser(raw)).cc].flat().flatMap((a) => a?.value.map((v) => v.address) ?? []);

describe('secure replies', () => {
  let portal: PortalApp | undefined;
  afterEach(async () => {
    await portal?.close();
    portal = undefined;
  });

  it('come from the gateway, name who wrote them, and are answered to the patient', async () => {
    portal = await portalApp();
    const { envelope, raw } = await reply(portal, 'pat@home.test', '"Pat Jones" <pat@home.test>', 'pat@home.test');
    // SPF and DMARC pass for the gateway's own domain; bounces come back to the gateway.
    expect(envelope.mailFrom).toBe('secure-reply@postern.test');
    expect(envelope.rcptTo).toEqual(['dr.carter@clinic.test']);
    expect(await senderOf(raw)).toEqual({
      from: [{ name: 'Pat Jones via Postern Secure Mail', address: 'secure-reply@postern.test' }],
      replyTo: ['pat@home.test'],
      to: ['dr.carter@clinic.test'],
      inReplyTo: '<results-9@clinic.test>',
    });
  });

  it('without a name in the original, the address says who wrote it; portal.replyFrom sets the gateway address', async () => {
    portal = await portalApp({ portal: { replyFrom: 'portal-replies@mail.example.org' } });
    const { envelope, raw } = await reply(portal, 'pat@home.test', 'pat@home.test', 'pat@home.test');
    expect(envelope.mailFrom).toBe('portal-replies@mail.example.org');
    expect(await senderOf(raw)).toMatchObject({ from: [{ name: 'pat@home.test via Postern Secure Mail', address: 'portal-replies@mail.example.org' }], replyTo: ['pat@home.test'] });
  });

  it('a Secure Text recipient is named by their number and answered at the address the sender used', async () => {
    portal = await portalApp();
    const { envelope, raw } = await reply(portal, '12025550143@secure.text', '12025550143@secure.text', '+12025550143@secure.text');
    expect(envelope.mailFrom).toBe('secure-reply@postern.test');
    expect(await senderOf(raw)).toMatchObject({ from: [{ name: '+12025550143 via Postern Secure Mail', address: 'secure-reply@postern.test' }], replyTo: ['12025550143@secure.text'] });
  });

  it('reply-all goes to the To and Cc of the original, never to a Bcc recipient the portal also holds it for', async () => {
    portal = await portalApp({ portal: { replyAll: true } });
    // pat.a is in To; pat.b was Bcc'd: both are envelope recipients of the one portal copy.
    const raw = original('"Pat A" <pat.a@home.test>');
    const fromA = await reply(portal, ['pat.a@home.test', 'pat.b@home.test'], raw, 'pat.a@home.test', true);
    expect(fromA.envelope.rcptTo).toEqual(['dr.carter@clinic.test']);
    expect(fromA.raw.toString()).not.toContain('pat.b@home.test');
    expect(await ccOf(fromA.raw)).toEqual([]);
    // The Bcc'd recipient's reply-all reaches the visible To, as a mail client's would.
    const fromB = await reply(portal, ['pat.a@home.test', 'pat.b@home.test'], raw, 'pat.b@home.test', true);
    expect(fromB.envelope.rcptTo).toEqual(['dr.carter@clinic.test', 'pat.a@home.test']);
    expect(await ccOf(fromB.raw)).toEqual(['pat.a@home.test']);
  });

  it('reply-all includes To and Cc recipients the message reached another way (TLS, PGP), once each', async () => {
    portal = await portalApp({ portal: { replyAll: true } });
    // Only pat@home.test went to the portal; the others got it by TLS or PGP.
    const raw = original('pat@home.test, Colleague <colleague@tls.test>', 'patient.pgp@crypt.test, "Dr. Ada Carter" <DR.CARTER@clinic.test>, PAT@home.test');
    const { envelope, raw: sent } = await reply(portal, 'pat@home.test', raw, 'pat@home.test', true);
    expect(envelope.rcptTo).toEqual(['dr.carter@clinic.test', 'colleague@tls.test', 'patient.pgp@crypt.test']);
    expect(await ccOf(sent)).toEqual(['colleague@tls.test', 'patient.pgp@crypt.test']);
    // Without the box ticked, or with portal.replyAll off, only the sender.
    expect((await reply(portal, 'pat@home.test', raw, 'pat@home.test')).envelope.rcptTo).toEqual(['dr.carter@clinic.test']);
  });

  it('reply-all is refused by configuration: the box is ignored unless portal.replyAll is on', async () => {
    portal = await portalApp();
    const raw = original('pat@home.test, colleague@tls.test');
    expect((await reply(portal, 'pat@home.test', raw, 'pat@home.test', true)).envelope.rcptTo).toEqual(['dr.carter@clinic.test']);
  });
});

/** The portal's certificate in tests is the self-signed development one. */
const agent = new Agent({ connect: { rejectUnauthorized: false } });

/** The app on a real socket, 127.0.0.1 only; closed with it. */
async function listening(portal: PortalApp): Promise<number> {
  await portal.app.listen({ host: '127.0.0.1', port: 0 });
  return (portal.app.server.address() as AddressInfo).port;
}

/** A message for pat@home.test, with Pat logged in: what a reply form posts to and with. */
async function replyForm(portal: PortalApp): Promise<{ path: string; cookie: string; csrf: string }> {
  const m = await portal.files.putMessage(original('pat@home.test'), { createdAt: Date.now(), expiresAt: Date.now() + 60_000, sender: 'dr.carter@clinic.test', recipients: ['pat@home.test'], queueId: 'Q1', kind: 'received' });
  const cookie = await portal.loggedIn('pat@home.test');
  const page = await portal.app.inject({ method: 'GET', url: `/message/${m.id}`, headers: { cookie } });
  return { path: `/message/${m.id}/reply`, cookie, csrf: csrfOf(page.body) };
}

/** A reply form posted whole, as a browser would: fields and files in this order. */
async function postReply(port: number, form: { path: string; cookie: string }, parts: [name: string, value: string | { filename: string; size: number }][]) {
  const body = new FormData();
  for (const [name, value] of parts) {
    if (typeof value === 'string') body.append(name, value);
    else body.append(name, new Blob([Buffer.alloc(value.size, 'x')]), value.filename);
  }
  const res = await fetch(`https://127.0.0.1:${port}${form.path}`, { method: 'POST', headers: { cookie: form.cookie }, body, dispatcher: agent });
  return { status: res.status, html: await res.text() };
}

const BOUNDARY = 'postern-test-boundary';
const fieldPart = (name: string, value: string) => `--${BOUNDARY}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
const fileStart = (filename: string, size: number) => Buffer.concat([Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="${filename}"\r\nContent-Type: application/octet-stream\r\n\r\n`), Buffer.alloc(size, 'x')]);

/** How long an unfinished upload waits for an answer that does not need the rest of its body: a bound on a hang, not on speed. */
const HANG_AFTER_MS = 15_000;

/**
 * A multipart upload that never ends: the head announces 64 MB, only `start` is sent (a
 * client still uploading). Resolves with the answer the portal gives before it closes
 * the connection; rejects if none comes, as a portal that waits for the whole body.
 */
function unfinishedUpload(port: number, form: { path: string; cookie: string }, start: Buffer): Promise<{ status: number; connection: string | undefined; html: string }> {
  const head = [`POST ${form.path} HTTP/1.1`, 'Host: 127.0.0.1', `Cookie: ${form.cookie}`, `Content-Type: multipart/form-data; boundary=${BOUNDARY}`, `Content-Length: ${64 * 1024 * 1024}`, '', ''].join('\r\n');
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => socket.write(Buffer.concat([Buffer.from(head), start])));
    const hang = setTimeout(() => {
      reject(new Error('no answer while the upload was unfinished: the portal is waiting for the rest of the body'));
      socket.destroy();
    }, HANG_AFTER_MS);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    // A reset after the answer (the client was still sending) still leaves the answer read.
    socket.on('error', (err) => (chunks.length ? undefined : reject(err)));
    socket.on('close', () => {
      clearTimeout(hang);
      const answer = Buffer.concat(chunks).toString('latin1');
      const [headers = '', html = ''] = answer.split('\r\n\r\n', 2);
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(headers)?.[1]), connection: /^connection: *(.+)$/im.exec(headers)?.[1], html });
    });
  });
}

describe('secure reply uploads', () => {
  const start = portalApps();

  it('the CSRF token is checked before any file is read: a wrong token, or a file before the token, is refused (403) while the upload is still coming', async () => {
    const portal = await start();
    const port = await listening(portal);
    const form = await replyForm(portal);
    const refusals = [
      Buffer.concat([Buffer.from(fieldPart('csrf', 'not-the-token')), fileStart('scan.pdf', 256 * 1024)]),
      // The right token, but after a file: the file would have to be read to get to it.
      Buffer.concat([fileStart('scan.pdf', 256 * 1024), Buffer.from(fieldPart('csrf', form.csrf))]),
    ];
    for (const upload of refusals) {
      const refused = await unfinishedUpload(port, form, upload);
      expect(refused).toMatchObject({ status: 403, connection: 'close' });
      expect(refused.html).toContain('<h2>Request refused</h2>');
    }
    // The portal's form sends the token first; a form that does not is not the portal's.
    const textFirst = await postReply(port, form, [['text', 'Thank you.'], ['csrf', form.csrf]]);
    expect(textFirst.status).toBe(403);
    expect(portal.queued).toEqual([]);

    // The portal goes on answering, uploads included.
    const sent = await postReply(port, form, [['csrf', form.csrf], ['text', 'My notes attached.'], ['files', { filename: 'notes.txt', size: 300 * 1024 }]]);
    expect(sent.status).toBe(200);
    expect(sent.html).toContain('Reply sent');
    expect(portal.queued).toHaveLength(1);
    expect((await simpleParser(portal.queued[0]!.raw)).attachments.map((a) => [a.filename, a.size])).toEqual([['notes.txt', 300 * 1024]]);
    expect(portal.logs.filter((l) => l.event === 'portal.error')).toEqual([]);
  });

  it('the files of one reply are bounded together by what the gateway accepts (smtp.limits.maxMessageSize): above, a 413 page before the rest is read', async () => {
    // 1 MB a message: at most 766,267 bytes of files once base64 has made them a third larger.
    const portal = await start({ smtp: { limits: { maxMessageSize: '1MB' } } });
    const port = await listening(portal);
    const form = await replyForm(portal);

    const oneTooMany = await unfinishedUpload(port, form, Buffer.concat([Buffer.from(fieldPart('csrf', form.csrf)), fileStart('scan-1.pdf', 400 * 1024), Buffer.from('\r\n'), fileStart('scan-2.pdf', 400 * 1024)]));
    expect(oneTooMany).toMatchObject({ status: 413, connection: 'close' });
    expect(oneTooMany.html).toContain('<h2>Too large</h2>');
    expect(oneTooMany.html).toContain('larger than this site accepts');

    // Sent whole: each file within the limit, both together over it.
    const two = await postReply(port, form, [['csrf', form.csrf], ['text', 'Scans.'], ['files', { filename: 'a.pdf', size: 400 * 1024 }], ['files', { filename: 'b.pdf', size: 400 * 1024 }]]);
    expect(two.status).toBe(413);
    expect(two.html).toContain('<h2>Too large</h2>');
    // Files within the limit and a long text: the message as a whole would be over 1 MB.
    const longText = await postReply(port, form, [['csrf', form.csrf], ['text', 'word '.repeat(20_000)], ['files', { filename: 'a.pdf', size: 700_000 }]]);
    expect(longText.status).toBe(413);
    expect(portal.queued).toEqual([]);

    const within = await postReply(port, form, [['csrf', form.csrf], ['text', 'Scan attached.'], ['files', { filename: 'a.pdf', size: 700_000 }]]);
    expect(within.status).toBe(200);
    expect(portal.queued).toHaveLength(1);
    expect(portal.queued[0]!.raw.length).toBeLessThanOrEqual(1024 * 1024);
    expect(portal.logs.filter((l) => l.event === 'portal.error')).toEqual([]);
  });
});
