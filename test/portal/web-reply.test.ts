import { simpleParser } from 'mailparser';
import { afterEach, describe, expect, it } from 'vitest';
import { portalApp, type PortalApp } from '../helpers/portal-app.js';

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
