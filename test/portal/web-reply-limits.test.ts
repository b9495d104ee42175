import { describe, expect, it } from 'vitest';
import { portalApps, type PortalApp } from '../helpers/portal-app.js';

const csrfOf = (html: string) => /name="csrf" value="([^"]+)"/.exec(html)?.[1] as string;
const ORIGINAL = Buffer.from('From: "Dr. Ada Carter" <dr.carter@clinic.test>\r\nTo: pat@home.test, sam@home.test\r\nSubject: Your results\r\nMessage-ID: <results-9@clinic.test>\r\n\r\nAll clear.\r\n');
const BOUNDARY = 'postern-limit-boundary';

/** A reply form as a browser posts it: the CSRF token first, the text, then a file of `size` bytes. */
function multipart(csrf: string, text: string, size: number): Buffer {
  const field = (name: string, value: string) => `--${BOUNDARY}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
  return Buffer.concat([
    Buffer.from(field('csrf', csrf) + field('text', text) + field('all', '1')),
    Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="scan.pdf"\r\nContent-Type: application/pdf\r\n\r\n`),
    Buffer.alloc(size, 'A'),
    Buffer.from(`\r\n--${BOUNDARY}--\r\n`),
  ]);
}

/** `identity` logged in, on a message for Pat and Sam: a function that posts a reply with a file of `size` bytes. */
async function replier(portal: PortalApp, identity: string) {
  const m = await portal.files.putMessage(ORIGINAL, { createdAt: Date.now(), expiresAt: Date.now() + 60_000, sender: 'dr.carter@clinic.test', recipients: ['pat@home.test', 'sam@home.test'], queueId: 'Q1', kind: 'received' });
  const cookie = await portal.loggedIn(identity);
  const page = await portal.app.inject({ method: 'GET', url: `/message/${m.id}`, headers: { cookie } });
  const csrf = csrfOf(page.body);
  return (size: number, i = 0) =>
    portal.app.inject({ method: 'POST', url: `/message/${m.id}/reply`, headers: { cookie, 'content-type': `multipart/form-data; boundary=${BOUNDARY}` }, payload: multipart(csrf, `Reply number ${i}`, size) });
}

describe('secure replies: limits per account', () => {
  const start = portalApps();

  it('at most portal.rateLimit.replies replies per account in replyWindow (30 an hour by default); then 429 with the portal\'s page, and nothing more is sent', async () => {
    const defaults = await start();
    expect(defaults.config.portal.rateLimit).toMatchObject({ replies: 30, replyWindow: 3_600_000 });
    const portal = await start({ portal: { replyAll: true, rateLimit: { replies: 3 } } });
    const send = await replier(portal, 'pat@home.test');
    const codes = [];
    for (let i = 0; i < 5; i++) codes.push((await send(1000, i)).statusCode);
    expect(codes).toEqual([200, 200, 200, 429, 429]);
    expect(portal.queued).toHaveLength(3);
    const refused = await send(1000);
    expect(refused.headers['content-type']).toMatch(/^text\/html/);
    expect(refused.body).toContain('Too many requests');
    expect(refused.headers['retry-after']).toBe('3600');
    // Refused before the upload was read: the connection ends with the answer.
    expect(refused.headers.connection).toBe('close');
    // Another account is not held back.
    expect((await (await replier(portal, 'sam@home.test'))(1000)).statusCode).toBe(200);
    expect(portal.queued).toHaveLength(4);
  });

  it('at most portal.rateLimit.replyBytes of replies per account in replyWindow', async () => {
    const portal = await start({ portal: { replyAll: true, rateLimit: { replyBytes: '700KB' } } });
    const send = await replier(portal, 'pat@home.test');
    // 200 KB files: about 270 KB each once base64-encoded in the reply.
    const codes = [];
    for (let i = 0; i < 4; i++) codes.push((await send(200_000, i)).statusCode);
    expect(codes).toEqual([200, 200, 429, 429]);
    expect(portal.queued).toHaveLength(2);
    expect((await (await replier(portal, 'sam@home.test'))(200_000)).statusCode).toBe(200);
  });
});
