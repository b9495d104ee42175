import { simpleParser } from 'mailparser';
import { afterEach, describe, expect, it } from 'vitest';
import { portalApp, type PortalApp } from '../helpers/portal-app.js';

const csrfOf = (html: string) => /name="csrf" value="([^"]+)"/.exec(html)?.[1] as string;
/** From and Reply-To as a mail client reads them. */
async function senderOf(raw: Buffer) {
  const parsed = await simpleParser(raw);
  return { from: parsed.from?.value, replyTo: parsed.replyTo?.value.map((a) => a.address), to: [parsed.to].flat().flatMap((a) => a?.value.map((v) => v.address) ?? []), inReplyTo: parsed.inReplyTo };
}

function original(to: string): Buffer {
  return Buffer.from(`From: "Dr. Ada Carter" <dr.carter@clinic.test>\r\nTo: ${to}\r\nSubject: Your results\r\nMessage-ID: <results-9@clinic.test>\r\n\r\nAll clear.\r\n`);
}

/** Stores a message for `rcpt`, logs in as `identity`, sends a secure reply; returns what was queued. */
async function reply(portal: PortalApp, rcpt: string, to: string, identity: string) {
  const m = await portal.files.putMessage(original(to), { createdAt: Date.now(), expiresAt: Date.now() + 60_000, sender: 'dr.carter@clinic.test', recipients: [rcpt], queueId: 'Q1', kind: 'received' });
  const cookie = await portal.loggedIn(identity);
  const page = await portal.app.inject({ method: 'GET', url: `/message/${m.id}`, headers: { cookie } });
  const sent = await portal.app.inject({ method: 'POST', url: `/message/${m.id}/reply`, headers: { cookie }, payload: { csrf: csrfOf(page.body), text: 'Thank you, doctor.' } });
  expect(sent.statusCode).toBe(200);
  expect(portal.queued).toHaveLength(1);
  return portal.queued[0]!;
}

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
    const { envelope, raw } = await reply(portal, '15551234567@secure.text', '15551234567@secure.text', '+15551234567@secure.text');
    expect(envelope.mailFrom).toBe('secure-reply@postern.test');
    expect(await senderOf(raw)).toMatchObject({ from: [{ name: '+15551234567 via Postern Secure Mail', address: 'secure-reply@postern.test' }], replyTo: ['15551234567@secure.text'] });
  });
});
