import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, fetch, FormData } from 'undici';
import { beforeAll, describe, expect, it } from 'vitest';
import type { TestGateway } from '../helpers/gateway.js';
import type { TestMx } from '../helpers/mx-server.js';
import { scenario } from '../helpers/scenario.js';
import { csrfOf, linkIn, Visitor } from '../helpers/portal-visitor.js';
import { sendMail, testMessage } from '../helpers/smtp-client.js';

const agent = new Agent({ connect: { rejectUnauthorized: false } });

describe('portal web flows', () => {
  const s = scenario();
  let mx: TestMx;
  let gw: TestGateway;
  let visitor: Visitor;

  beforeAll(async () => {
    mx = await s.mx();
    const policy = join(mkdtempSync(join(tmpdir(), 'postern-flows-')), 'policy.yaml');
    writeFileSync(policy, 'defaults: { methods: [portal], onNoMethod: defer, portalExpiry: 2d }\nrules: []\n');
    gw = await s.gateway({ policy: { file: policy }, delivery: { routes: { '*': { nexthop: `127.0.0.1:${mx.port}`, tls: 'none' } } } });
    visitor = new Visitor(`https://127.0.0.1:${gw.gateway.portalPort}`);
  });

  it('first visit sets the password; the copy expires when the policy rule said', async () => {
    await sendMail(gw.port, { from: 'dr@client.test', to: ['pat@home.test'], raw: testMessage({ subject: 'Scan results' }) });
    await mx.waitFor(1);
    const link = linkIn(mx.messages[0]!.raw.toString(), 'm');
    const form = await visitor.get(link);
    expect(form.html).toContain('Set your password');
    const done = await visitor.post(link, { csrf: csrfOf(form.html), password: 'Blue-harbour-lantern-42', confirm: 'Blue-harbour-lantern-42' });
    expect(done.status).toBe(303);
    expect(done.location).toMatch(/^\/message\/[A-Za-z0-9_-]{16}$/);
    const page = await visitor.get(done.location as string);
    expect(page.html).toContain('Scan results');
    const metaDir = join(gw.dataDir, 'portal', 'messages');
    const meta = JSON.parse(readFileSync(join(metaDir, readdirSync(metaDir).find((f) => f.endsWith('.json'))!), 'utf8')) as { createdAt: number; expiresAt: number };
    expect(meta.expiresAt - meta.createdAt).toBe(2 * 86_400_000);
    // The notice link, used again once a password exists, asks to log in instead.
    const again = await new Visitor(`https://127.0.0.1:${gw.gateway.portalPort}`).get(link);
    expect(again.html).toContain('Log in to read your secure messages');
  });

  it('CSRF: a reply POST without the token, or with a wrong one, is refused and queues nothing', async () => {
    const inbox = await visitor.get('/inbox');
    const id = /\/message\/([A-Za-z0-9_-]{16})/.exec(inbox.html)?.[1] as string;
    const page = await visitor.get(`/message/${id}`);
    const token = csrfOf(page.html);
    expect(token).toBeTruthy();
    const replies = async () => (await gw.gateway.queue.list()).filter((m) => m.envelope.origin === 'portal-reply').length;
    // What a forged cross-site form would send: multipart, as the reply form is, with the session cookie but no token.
    const form = new FormData();
    form.set('text', 'Forged reply.');
    const forged = await fetch(`https://127.0.0.1:${gw.gateway.portalPort}/message/${id}/reply`, { method: 'POST', headers: { cookie: visitor.cookie }, body: form, redirect: 'manual', dispatcher: agent });
    expect(forged.status).toBe(403);
    expect(await forged.text()).toContain('Request refused');
    expect((await visitor.post(`/message/${id}/reply`, { csrf: 'not-the-token', text: 'Forged reply.' })).status).toBe(403);
    expect(await replies()).toBe(0);
    expect(gw.events('portal.reply')).toHaveLength(0);
    // The same request with the page's token goes through: the token is what was missing.
    const sent = await visitor.post(`/message/${id}/reply`, { csrf: token, text: 'A real reply.' });
    expect(sent.status).toBe(200);
    expect(gw.events('portal.reply')).toHaveLength(1);
  });

  it('password reset: a single-use link by mail, valid 30 minutes; the old password stops working', async () => {
    const before = mx.messages.length;
    const fresh = new Visitor(`https://127.0.0.1:${gw.gateway.portalPort}`);
    const resetForm = await fresh.get('/reset');
    const asked = await fresh.post('/reset', { csrf: csrfOf(resetForm.html), identity: 'PAT@home.test' });
    expect(asked.html).toContain('a link to set a new password is on its way');
    // Nobody learns whether an address has an account: the same answer for a stranger.
    const stranger = await fresh.post('/reset', { csrf: csrfOf(resetForm.html), identity: 'nobody@home.test' });
    expect(stranger.html).toContain('a link to set a new password is on its way');
    await mx.waitFor(before + 1);
    const mail = mx.messages[before]!.raw.toString();
    expect(mail).toMatch(/^Subject: .*reset your password/m);
    const link = linkIn(mail, 'r');
    const form = await fresh.get(link);
    const set = await fresh.post(link, { csrf: csrfOf(form.html), password: 'Green-meadow-compass-77', confirm: 'Green-meadow-compass-77' });
    expect(set.status).toBe(303);
    expect((await fresh.get(link)).status).toBe(404); // single use
    // The reset ended the session logged in before it (the first visit's).
    expect((await visitor.get('/inbox')).location).toMatch(/^\/login/);
    const login = new Visitor(`https://127.0.0.1:${gw.gateway.portalPort}`);
    const lf = await login.get('/login');
    expect((await login.post('/login', { csrf: csrfOf(lf.html), identity: 'pat@home.test', password: 'Blue-harbour-lantern-42', next: '/inbox' })).status).toBe(401);
    const anonymous = login.cookie;
    expect(anonymous).toMatch(/^__Host-postern=/);
    expect((await login.post('/login', { csrf: csrfOf(lf.html), identity: 'pat@home.test', password: 'Green-meadow-compass-77', next: '/inbox' })).location).toBe('/inbox');
    // A new session id at login (no session fixation); the old one is gone.
    expect(login.cookie).not.toBe(anonymous);
    const old = await fetch(`https://127.0.0.1:${gw.gateway.portalPort}/inbox`, { headers: { cookie: anonymous }, redirect: 'manual', dispatcher: agent });
    expect(old.headers.get('location')).toMatch(/^\/login/);
  });

  it('an attachment downloads as an attachment, never rendered: Content-Disposition with its name, octet-stream, nosniff', async () => {
    // The reset before ended this visitor's session: log in with the new password.
    const lf = await visitor.get('/login');
    expect((await visitor.post('/login', { csrf: csrfOf(lf.html), identity: 'pat@home.test', password: 'Green-meadow-compass-77', next: '/inbox' })).location).toBe('/inbox');
    const page = await visitor.get('/inbox');
    const plainId = /\/message\/([A-Za-z0-9_-]{16})/.exec(page.html)?.[1] as string;
    expect(plainId).toBeTruthy();
    // testMessage has no attachment: a clear 404 page, not a crash.
    expect((await fetch(`https://127.0.0.1:${gw.gateway.portalPort}/message/${plainId}/attachment/0`, { headers: { cookie: visitor.cookie }, dispatcher: agent })).status).toBe(404);

    // An HTML attachment with a script: a browser must save it, never show it as a page of the portal.
    const html = Buffer.from('<html><body><script>document.title="ran"</script>lab values</body></html>');
    const before = mx.messages.length;
    const raw = [
      'From: dr@client.test',
      'To: pat@home.test',
      'Subject: Lab report',
      'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="b1"',
      '',
      '--b1',
      'Content-Type: text/plain; charset=utf-8',
      '',
      'The report is attached.',
      '--b1',
      'Content-Type: text/html; name="=?UTF-8?Q?lab_=22report=22_=C3=BC.html?="',
      'Content-Disposition: attachment; filename="=?UTF-8?Q?lab_=22report=22_=C3=BC.html?="',
      'Content-Transfer-Encoding: base64',
      '',
      html.toString('base64'),
      '--b1--',
      '',
    ].join('\r\n');
    await sendMail(gw.port, { from: 'dr@client.test', to: ['pat@home.test'], raw });
    await mx.waitFor(before + 1);
    const inbox = await visitor.get('/inbox');
    const id = /\/message\/([A-Za-z0-9_-]{16})">Lab report/.exec(inbox.html)?.[1] as string;
    expect(id).toBeTruthy();
    expect((await visitor.get(`/message/${id}`)).html).toContain(`/message/${id}/attachment/0`);
    const res = await fetch(`https://127.0.0.1:${gw.gateway.portalPort}/message/${id}/attachment/0`, { headers: { cookie: visitor.cookie }, dispatcher: agent });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-disposition')).toBe(`attachment; filename="lab _report_ _.html"; filename*=UTF-8''lab%20_report_%20%C3%BC.html`);
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(Buffer.from(await res.arrayBuffer()).equals(html)).toBe(true);
    expect(gw.events('portal.download').at(-1)).toMatchObject({ portalId: id, attachment: 0, size: html.length });
    // Not for a visitor who is not logged in.
    const anonymous = await fetch(`https://127.0.0.1:${gw.gateway.portalPort}/message/${id}/attachment/0`, { redirect: 'manual', dispatcher: agent });
    expect(anonymous.status).toBe(302);
    expect(anonymous.headers.get('content-disposition')).toBeNull();
  });
});
