import { describe, expect, it } from 'vitest';
import { richMessage } from '../helpers/sample-message.js';
import { portalApps } from '../helpers/portal-app.js';

const csrfOf = (html: string) => /name="csrf" value="([^"]+)"/.exec(html)?.[1] as string;
const SECRET = 'Subject: Biopsy ACCESS-MARKER-41';
const from = { 'x-forwarded-for': '198.51.100.61', 'user-agent': 'TestBrowser/1.0' };

describe('portal access control', () => {
  const start = portalApps();

  it('a logged-in recipient cannot view, download or reply to another recipient\'s message, and learns nothing of it', async () => {
    const portal = await start();
    const raw = richMessage(['From: dr@clinic.test', 'To: alice@home.test', SECRET]);
    const m = await portal.files.putMessage(raw, { createdAt: Date.now(), expiresAt: Date.now() + 60_000, sender: 'dr@clinic.test', recipients: ['alice@home.test'], queueId: 'Q1', kind: 'received' });
    const alice = await portal.loggedIn('alice@home.test');
    const bob = await portal.loggedIn('bob@home.test');

    // Alice can: the page, the body, the attachment, a reply — each logged with where it came from.
    const page = await portal.app.inject({ method: 'GET', url: `/message/${m.id}`, headers: { cookie: alice, ...from } });
    expect(page.statusCode).toBe(200);
    expect((await portal.app.inject({ method: 'GET', url: `/message/${m.id}/attachment/0`, headers: { cookie: alice, ...from } })).statusCode).toBe(200);
    const replied = await portal.app.inject({ method: 'POST', url: `/message/${m.id}/reply`, headers: { cookie: alice, ...from }, payload: { csrf: csrfOf(page.body), text: 'Thanks.' } });
    expect(replied.statusCode).toBe(200);
    for (const event of ['portal.view', 'portal.download', 'portal.reply']) expect(portal.logs.find((l) => l.event === event), event).toMatchObject({ identity: 'alice@home.test', ip: '198.51.100.61', userAgent: 'TestBrowser/1.0' });
    const aliceReply = (await portal.files.all()).find((x) => x.kind === 'reply')!;
    expect(aliceReply).toBeDefined();
    const queued = portal.queued.length;
    const events = portal.logs.length;

    // Bob cannot, for her message nor her reply, whatever he asks for.
    const bobPage = await portal.app.inject({ method: 'GET', url: '/inbox', headers: { cookie: bob } });
    const csrf = csrfOf(bobPage.body);
    for (const id of [m.id, aliceReply.id]) {
      const answers = [
        await portal.app.inject({ method: 'GET', url: `/message/${id}`, headers: { cookie: bob } }),
        await portal.app.inject({ method: 'GET', url: `/message/${id}?images=1`, headers: { cookie: bob } }),
        await portal.app.inject({ method: 'GET', url: `/message/${id}/content`, headers: { cookie: bob } }),
        await portal.app.inject({ method: 'GET', url: `/message/${id}/attachment/0`, headers: { cookie: bob } }),
        await portal.app.inject({ method: 'POST', url: `/message/${id}/reply`, headers: { cookie: bob }, payload: { csrf, text: 'Hijacked reply.', all: '1' } }),
      ];
      for (const res of answers) {
        expect(res.statusCode).toBe(404);
        expect(res.body).toContain('Message not available');
        expect(res.body).not.toContain('ACCESS-MARKER-41');
        expect(res.body).not.toContain('alice@home.test');
        expect(res.body).not.toContain('dr@clinic.test');
        expect(res.headers['content-disposition']).toBeUndefined();
      }
    }
    // The answer for a message that does not exist is the same: no probing for ids.
    const none = await portal.app.inject({ method: 'GET', url: '/message/AAAAAAAAAAAAAAAA', headers: { cookie: bob } });
    expect(none.statusCode).toBe(404);
    expect(none.body.replace(/value="[^"]+"/g, '')).toBe((await portal.app.inject({ method: 'GET', url: `/message/${m.id}`, headers: { cookie: bob } })).body.replace(/value="[^"]+"/g, ''));
    expect(bobPage.body).toContain('No secure messages.');
    expect(portal.queued).toHaveLength(queued);
    expect(portal.logs.slice(events).filter((l) => ['portal.view', 'portal.download', 'portal.reply'].includes(String(l.event)))).toEqual([]);
    expect((await portal.files.get(m.id))?.readAt).not.toHaveProperty('bob@home.test');
  });

  it('a notice link whose stored recipient no longer makes an identity (portal.sms.defaultCountry changed since) answers "Link not valid"', async () => {
    // Sent while the default country was 1, where 15551234567 is +15551234567; under 44 it is no number at all.
    const portal = await start({ portal: { sms: { defaultCountry: '44' } } });
    const rcpt = '15551234567@secure.text';
    const m = await portal.files.putMessage(Buffer.from('Subject: x\r\n\r\nbody\r\n'), { createdAt: Date.now(), expiresAt: Date.now() + 60_000, sender: 'dr@clinic.test', recipients: [rcpt], queueId: 'Q4', kind: 'received' });
    const token = await portal.files.createToken({ kind: 'notice', recipient: rcpt, messageId: m.id, expiresAt: Date.now() + 60_000 });
    const shown = await portal.app.inject({ method: 'GET', url: `/m/${token}` });
    expect(shown.statusCode).toBe(404);
    expect(shown.body).toContain('Link not valid');
    const form = await portal.app.inject({ method: 'GET', url: '/login' });
    const cookie = /(__Host-postern=[^;]+)/.exec(String(form.headers['set-cookie']))?.[1] as string;
    const posted = await portal.app.inject({ method: 'POST', url: `/m/${token}`, headers: { cookie }, payload: { csrf: csrfOf(form.body), password: 'Quiet-orchard-window-58', confirm: 'Quiet-orchard-window-58' } });
    expect(posted.statusCode).toBe(404);
    expect(posted.body).toContain('Link not valid');
  });
});
