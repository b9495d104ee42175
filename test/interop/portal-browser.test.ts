import { mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AxeBuilder } from '@axe-core/playwright';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDns } from '../helpers/dns-server.js';
import type { TestGateway } from '../helpers/gateway.js';
import type { TestMx } from '../helpers/mx-server.js';
import { createTestCa } from '../helpers/pki.js';
import { findProgram } from '../helpers/programs.js';
import { scenario } from '../helpers/scenario.js';
import { sendMail } from '../helpers/smtp-client.js';

const chromiumPath = findProgram('chromium');
const ARTIFACTS = join(process.cwd(), 'test-artifacts', 'portal');
const MARKER = 'PLAINTEXT-MARKER-7c1e9a';
const PASSWORD = 'Blue-harbour-lantern-42';

const POLICY = `
consumerDomains: [patients.test]
defaults: { methods: [tls], tls: verify, onNoMethod: portal }
domains:
  client.test: { methods: [tls], tls: verify }
rules:
  - id: consumer-mail
    match: { consumerDomain: true }
    action: { methods: [portal] }
`;

const PDF = Buffer.concat([Buffer.from('%PDF-1.4\n% Postern test attachment\n'), Buffer.from(Array.from({ length: 2000 }, (_, i) => i % 256))]);

function hostileMessage(): string {
  const boundary = 'mixed-b';
  const alt = 'alt-b';
  const html = [
    `<p>Dear patient, your results are ready. ${MARKER}</p>`,
    '<script>window.parent.document.title = "pwned-script"; alert("xss")</script>',
    '<img src="x" onerror="alert(\'onerror\')">',
    '<svg onload="alert(\'svg\')"><circle r="5"></circle></svg>',
    '<a href="javascript:alert(\'js-link\')">click me</a>',
    '<div style="background:url(https://tracker.example/css.png)">styled</div>',
    '<img src="https://tracker.example/pixel.png" alt="tracking pixel">',
    '<a href="https://hospital.example/info">More information</a>',
  ].join('\r\n');
  return [
    'From: "Dr. Ada Carter" <dr.carter@client.test>',
    'To: patient@patients.test',
    'Subject: Your lab results',
    'Message-ID: <results-1@client.test>',
    'Date: Mon, 23 Nov 2026 10:00:00 +0000',
    'MIME-Version: 1.0',
    `Content-Type: multipart/mixed; boundary="${boundary}"`,
    '',
    `--${boundary}`,
    `Content-Type: multipart/alternative; boundary="${alt}"`,
    '',
    `--${alt}`,
    'Content-Type: text/plain; charset=utf-8',
    '',
    `Dear patient, your results are ready. ${MARKER}`,
    `--${alt}`,
    'Content-Type: text/html; charset=utf-8',
    '',
    html,
    `--${alt}--`,
    `--${boundary}`,
    'Content-Type: application/pdf; name="results.pdf"',
    'Content-Disposition: attachment; filename="results.pdf"',
    'Content-Transfer-Encoding: base64',
    '',
    PDF.toString('base64').replace(/.{76}/g, '$&\r\n'),
    `--${boundary}--`,
    '',
  ].join('\r\n');
}

// Skipped only on a developer machine without Debian's chromium; under CI=true findProgram throws.
describe.skipIf(!chromiumPath)('secure portal in a real browser (headless Chromium)', () => {
  const s = scenario();
  const ca = createTestCa();
  let dns: TestDns;
  let patientMx: TestMx;
  let senderMx: TestMx;
  let gw: TestGateway;
  let browser: Browser;
  let base = '';
  const offsite: string[] = [];
  const dialogs: string[] = [];

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    patientMx = await s.mx();
    senderMx = await s.mx({ tls: ca.issue(['mx.client.test']) });
    dns = await new TestDns({ 'mx.client.test': { A: ['127.0.0.1'] }, 'mx.patients.test': { A: ['127.0.0.1'] } }).start();
    const dir = mkdtempSync(join(tmpdir(), 'postern-portal-'));
    writeFileSync(join(dir, 'policy.yaml'), POLICY);
    gw = await s.gateway({
      policy: { file: join(dir, 'policy.yaml') },
      delivery: {
        dns: { servers: [dns.server] },
        tls: { default: 'may', trust: [ca.caFile] },
        routes: { 'patients.test': { nexthop: `mx.patients.test:${patientMx.port}`, tls: 'may' }, 'client.test': `mx.client.test:${senderMx.port}` },
      },
    });
    base = `https://postern.test:${gw.gateway.portalPort}`;
    browser = await chromium.launch({
      executablePath: chromiumPath as string,
      args: ['--no-sandbox', '--disable-background-networking', '--disable-gpu', '--disable-component-update', '--no-first-run', `--host-resolver-rules=MAP postern.test 127.0.0.1, MAP * ~NOTFOUND`],
    });
  });

  afterAll(async () => {
    await browser?.close();
    await dns?.stop();
  });

  async function newPage(width = 1280): Promise<Page> {
    const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width, height: 900 }, acceptDownloads: true });
    const page = await context.newPage();
    // Any request that leaves the portal is recorded and refused.
    await context.route('**/*', (route) => {
      const url = route.request().url();
      if (url.startsWith(base)) return route.continue();
      offsite.push(url);
      return route.abort();
    });
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    return page;
  }

  /**
   * Screenshots at 375 and 1280 px, and what every page must pass: nothing wider than a
   * 375-px phone (no sideways scrolling), and no serious or critical accessibility
   * violation (axe-core: labels, contrast, names, landmarks).
   */
  async function shoot(page: Page, name: string): Promise<void> {
    for (const width of [375, 1280]) {
      await page.setViewportSize({ width, height: 900 });
      if (width === 375) expect(await page.evaluate<number>('document.documentElement.scrollWidth'), `${name}: wider than the phone`).toBeLessThanOrEqual(375);
      await page.screenshot({ path: join(ARTIFACTS, `${name}-${width}.png`), fullPage: true });
    }
    // Not inside the message frame: that is the sender's HTML, and its sandbox runs no script (axe would wait forever).
    const { violations } = await new AxeBuilder({ page }).exclude('iframe[title="Message body"]').analyze();
    const serious = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join('; ')})`);
    expect(serious, `${name}: accessibility`).toEqual([]);
  }

  // Chromium and an accessibility check of every page on two shared cores: more than the default minute.
  it('notice → set password → read → download → reply → logout → login; nothing hostile runs or leaks', { timeout: 180_000 }, async () => {
    const r = await sendMail(gw.port, { from: 'dr.carter@client.test', to: ['patient@patients.test'], raw: hostileMessage() });
    expect(r.ok).toBe(true);
    await patientMx.waitFor(1);
    const notice = patientMx.messages[0]!.raw.toString();
    expect(notice).not.toContain(MARKER);
    expect(notice).not.toContain('Your lab results');
    const link = /https:\/\/postern\.test:\d+\/m\/[A-Za-z0-9_-]{43}/.exec(notice)?.[0] as string;
    expect(link).toBeTruthy();

    const page = await newPage();
    await page.goto(link);
    await shoot(page, '1-set-password');
    await expect(page.getByRole('heading', { name: 'Set your password' }).isVisible()).resolves.toBe(true);
    // A weak password is refused with a reason.
    await page.getByLabel('New password').fill('aaaaaaaaaaaaaa');
    await page.getByLabel('Repeat the password').fill('aaaaaaaaaaaaaa');
    await page.getByRole('button', { name: /set password/i }).click();
    expect(await page.getByRole('alert').textContent()).toMatch(/Mix upper and lower case letters/);
    await page.getByLabel('New password').fill(PASSWORD);
    await page.getByLabel('Repeat the password').fill(PASSWORD);
    await page.getByRole('button', { name: /set password/i }).click();
    await page.waitForURL(/\/message\/[A-Za-z0-9_-]{16}$/);
    await shoot(page, '2-message');
    expect(await page.getByRole('heading', { name: 'Your lab results' }).isVisible()).toBe(true);
    expect(await page.textContent('body')).toMatch(/1 remote image\(s\) blocked/);
    const frame = page.frameLocator('iframe[title="Message body"]');
    expect(await frame.locator('body').textContent()).toContain(MARKER);
    expect(await frame.locator('a', { hasText: 'click me' }).getAttribute('href')).toBeNull();
    expect(await frame.locator('a', { hasText: 'More information' }).getAttribute('rel')).toBe('noopener noreferrer nofollow');
    await page.waitForTimeout(300);
    expect(dialogs).toEqual([]);
    expect(await page.title()).not.toContain('pwned');
    expect(offsite).toEqual([]);

    // Only when asked: remote images load (here the router refuses them, but they are asked for).
    await page.getByRole('link', { name: 'Show images' }).click();
    await page.waitForURL(/images=1/);
    await page.waitForTimeout(300);
    expect(offsite).toContain('https://tracker.example/pixel.png');
    expect(offsite.some((u) => u.includes('css.png'))).toBe(false); // styles never load anything
    offsite.length = 0;
    await page.goBack();

    // Download: attachment headers and identical bytes.
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'results.pdf' }).click()]);
    // A download is no page response (Chromium hands it to its download manager): the
    // same link, asked for with the browser's session cookie, shows the headers it carries.
    const href = (await page.getByRole('link', { name: 'results.pdf' }).getAttribute('href')) as string;
    const cookie = (await page.context().cookies(base)).map((c) => `${c.name}=${c.value}`).join('; ');
    const served = await page.context().request.get(`${base.replace('postern.test', '127.0.0.1')}${href}`, { headers: { cookie } });
    expect(served.status()).toBe(200);
    expect(served.headers()).toMatchObject({ 'content-disposition': `attachment; filename="results.pdf"; filename*=UTF-8''results.pdf`, 'content-type': 'application/octet-stream', 'x-content-type-options': 'nosniff' });
    const saved = join(ARTIFACTS, 'downloaded.pdf');
    await download.saveAs(saved);
    expect(readFileSync(saved).equals(PDF)).toBe(true);

    // Secure reply with an attachment, delivered to the sender's MX over verified TLS.
    const before = senderMx.messages.length;
    await page.getByLabel('Your reply').fill('Thank you, doctor. See my notes attached.');
    await page.setInputFiles('#files', { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('my notes') });
    await page.getByRole('button', { name: 'Send secure reply' }).click();
    expect(await page.getByRole('heading', { name: 'Reply sent' }).isVisible()).toBe(true);
    await shoot(page, '3-reply-sent');
    await senderMx.waitFor(before + 1);
    const replyMail = senderMx.messages.at(-1)!;
    // From the gateway's own address (SPF and DMARC pass for its domain, bounces come back
    // to it), named for the patient; answering it reaches the patient.
    expect(replyMail).toMatchObject({ mailFrom: 'secure-reply@postern.test', rcptTo: ['dr.carter@client.test'], secure: true });
    const replyRaw = replyMail.raw.toString();
    const replyHeaders = replyRaw.slice(0, replyRaw.indexOf('\r\n\r\n')).replace(/\r\n[ \t]+/g, ' '); // unfolded
    expect(replyHeaders).toMatch(/^From: "?patient@patients\.test via Postern Secure Mail"? <secure-reply@postern\.test>$/m);
    expect(replyHeaders).toMatch(/^Reply-To: patient@patients\.test$/m);
    expect(replyRaw).toMatch(/^Subject: Re: Your lab results\r$/m);
    expect(replyRaw).toMatch(/^In-Reply-To: <results-1@client\.test>\r$/m);
    expect(replyRaw).toContain('Thank you, doctor.');
    expect(replyRaw).toContain('filename=notes.txt');
    expect(gw.events('delivery.sent').find((l) => l.to === 'dr.carter@client.test')).toMatchObject({ rule: 'portal-reply', tls: { level: 'verify', verified: true } });

    // The inbox lists the message and the reply; logout; login again.
    await page.goto(`${base}/inbox`);
    await shoot(page, '4-inbox');
    expect(await page.textContent('main')).toMatch(/Your lab results[\s\S]*Re: Your lab results|Re: Your lab results[\s\S]*Your lab results/);
    await page.getByRole('button', { name: 'Log out' }).click();
    expect(await page.getByRole('heading', { name: 'Logged out' }).isVisible()).toBe(true);
    await shoot(page, '4b-logged-out');
    await page.goto(`${base}/inbox`);
    await page.waitForURL(/\/login/);
    await shoot(page, '5-login');
    await page.getByLabel('Email address or phone number').fill('patient@patients.test');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.waitForURL(/\/inbox$/);
    expect(await page.textContent('main')).toContain('Your lab results');
    expect(dialogs).toEqual([]);
    expect(offsite).toEqual([]);
  });

  it('five wrong passwords lock the account for ten minutes', { timeout: 120_000 }, async () => {
    const page = await newPage(375);
    for (let i = 1; i <= 6; i++) {
      await page.goto(`${base}/login`);
      await page.getByLabel('Email address or phone number').fill('patient@patients.test');
      await page.getByLabel('Password').fill(`wrong-password-${i}`);
      await page.getByRole('button', { name: 'Log in' }).click();
      const alert = (await page.getByRole('alert').textContent()) ?? '';
      if (i < 5) expect(alert).toMatch(/not right/);
      else expect(alert).toMatch(/Too many failed attempts/);
    }
    await shoot(page, '6-locked');
    // Even the right password waits for the lock to end.
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();
    expect(await page.getByRole('alert').textContent()).toMatch(/Too many failed attempts/);
    expect(gw.events('portal.locked')).toHaveLength(1);
  });

  it('a withdrawn message and an expired one show the right page', { timeout: 120_000 }, async () => {
    const portalDir = join(gw.dataDir, 'portal', 'messages');
    const id = readdirSync(portalDir).filter((f) => f.endsWith('.json')).map((f) => JSON.parse(readFileSync(join(portalDir, f), 'utf8')) as { id: string; kind: string }).find((m) => m.kind === 'received')!.id;
    // A fresh account (the other one is locked): the message is also for this one.
    const meta = JSON.parse(readFileSync(join(portalDir, `${id}.json`), 'utf8')) as Record<string, unknown>;
    const page = await newPage(375);
    const { execFile } = await import('node:child_process');
    const { promisify } = await import('node:util');
    const configFile = join(mkdtempSync(join(tmpdir(), 'postern-revoke-')), 'postern.yaml');
    writeFileSync(configFile, `dataDir: ${gw.dataDir}\nhostname: postern.test\n`);
    const out = await promisify(execFile)(process.execPath, [join(process.cwd(), 'dist', 'cli', 'postern.cjs'), 'portal', 'revoke', id, '--config', configFile, '--by', 'compliance']);
    expect(out.stdout).toContain(`withdrawn: ${id}`);
    // Log in through a session made directly (the account is locked by the test before).
    const { SessionStore, SESSION_COOKIE } = await import('../../src/portal/web/sessions.js');
    const { FsPortalStore } = await import('../../src/portal/fs-store.js');
    // Sessions are not encrypted content: a store with no master key serves them.
    const { id: sid } = await new SessionStore(new FsPortalStore(join(gw.dataDir, 'portal'), []), 60_000, 3_600_000).create('patient@patients.test');
    await page.context().addCookies([{ name: SESSION_COOKIE, value: sid, url: base, secure: true, httpOnly: true, sameSite: 'Strict' }]);
    await page.goto(`${base}/message/${id}`);
    expect(await page.getByRole('heading', { name: 'Message withdrawn' }).isVisible()).toBe(true);
    expect(await page.getByRole('alert').textContent()).toBe('This message was withdrawn by the sender.');
    await shoot(page, '7-withdrawn');
    writeFileSync(join(portalDir, `${id}.json`), JSON.stringify({ ...meta, revoked: undefined, expiresAt: Date.now() - 1000 }));
    await page.goto(`${base}/message/${id}`);
    expect(await page.getByRole('heading', { name: 'Message not available' }).isVisible()).toBe(true);
    await shoot(page, '8-expired');
  });

  it('refuses a state change without the CSRF token, and sets the session cookie strictly', async () => {
    const res = await fetchInsecure(`${base}/login`);
    const cookie = res.headers.get('set-cookie') ?? '';
    expect(cookie).toMatch(/^__Host-postern=[A-Za-z0-9_-]{43}; Path=\//);
    expect(cookie).toMatch(/; HttpOnly/);
    expect(cookie).toMatch(/; Secure/);
    expect(cookie).toMatch(/; SameSite=Strict/);
    expect(cookie).not.toMatch(/Domain=/i);
    expect(res.headers.get('content-security-policy')).toMatch(/frame-ancestors 'none'/);
    const sid = /__Host-postern=([^;]+)/.exec(cookie)?.[1] as string;
    const forged = await fetchInsecure(`${base}/login`, { method: 'POST', headers: { cookie: `__Host-postern=${sid}`, 'content-type': 'application/x-www-form-urlencoded' }, body: 'identity=patient%40patients.test&password=x&next=%2Finbox' });
    expect(forged.status).toBe(403);
    const reply = await fetchInsecure(`${base}/logout`, { method: 'POST', headers: { cookie: `__Host-postern=${sid}`, 'content-type': 'application/x-www-form-urlencoded' }, body: 'csrf=not-the-token' });
    expect(reply.status).toBe(403);
  });

  it('the other pages: link not valid, password reset (request, sent, set), keyboard-only login, CSRF refused, too many requests', { timeout: 180_000 }, async () => {
    const page = await newPage(375);
    await page.goto(`${base}/m/${'A'.repeat(43)}`);
    expect(await page.getByRole('heading', { name: 'Link not valid' }).isVisible()).toBe(true);
    await shoot(page, '9-link-not-valid');

    const mails = patientMx.messages.length;
    await page.goto(`${base}/reset`);
    await shoot(page, '10-reset-request');
    await page.getByLabel('Email address or phone number').fill('patient@patients.test');
    await page.getByRole('button', { name: 'Send me a link' }).click();
    expect(await page.getByRole('status').textContent()).toMatch(/a link to set a new password is on its way/);
    await shoot(page, '11-reset-sent');
    await patientMx.waitFor(mails + 1);
    const link = /https:\/\/postern\.test:\d+\/r\/[A-Za-z0-9_-]{43}/.exec(patientMx.messages[mails]!.raw.toString())?.[0] as string;
    await page.goto(link);
    await shoot(page, '12-reset-set-password');
    await page.getByLabel('New password').fill('Green-meadow-compass-77');
    await page.getByLabel('Repeat the password').fill('Green-meadow-compass-77');
    await page.getByRole('button', { name: /set password/i }).click();
    await page.waitForURL(/\/inbox$/);
    await page.getByRole('button', { name: 'Log out' }).click();

    // Log in with the keyboard alone: the fields come first in tab order, Enter sends.
    await page.goto(`${base}/login`);
    const focused = () => page.evaluate<string>("document.activeElement?.id ?? ''");
    for (let i = 0; i < 5 && (await focused()) !== 'identity'; i++) await page.keyboard.press('Tab');
    expect(await focused()).toBe('identity');
    await page.keyboard.type('patient@patients.test');
    await page.keyboard.press('Tab');
    expect(await focused()).toBe('password');
    await page.keyboard.type('Green-meadow-compass-77');
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/inbox$/);
    expect(await page.getByRole('heading', { name: 'Your secure messages' }).isVisible()).toBe(true);
    await page.getByRole('button', { name: 'Log out' }).click();

    // A form whose session has gone (a forged or a stale one): refused.
    await page.goto(`${base}/login`);
    await page.context().clearCookies();
    await page.getByLabel('Email address or phone number').fill('patient@patients.test');
    await page.getByLabel('Password').fill('Green-meadow-compass-77');
    await page.getByRole('button', { name: 'Log in' }).click();
    expect(await page.getByRole('heading', { name: 'Request refused' }).isVisible()).toBe(true);
    await shoot(page, '13-csrf-refused');

    // Reset requests for one address are limited (portal.rateLimit.resetsPerAccount: 3 by default).
    let title = '';
    for (let i = 0; i < 4 && title !== 'Too many requests'; i++) {
      await page.goto(`${base}/reset`);
      await page.getByLabel('Email address or phone number').fill('patient@patients.test');
      await page.getByRole('button', { name: 'Send me a link' }).click();
      title = (await page.locator('main h2').textContent()) ?? '';
    }
    expect(title).toBe('Too many requests');
    await shoot(page, '14-too-many-requests');
    expect(dialogs).toEqual([]);
    expect(offsite).toEqual([]);
  });

  it('keeps no plaintext of the message on disk', () => {
    const hits: string[] = [];
    const walk = (dir: string) => {
      for (const name of readdirSync(dir)) {
        const path = join(dir, name);
        if (statSync(path).isDirectory()) walk(path);
        else if (readFileSync(path).includes(MARKER)) hits.push(path);
      }
    };
    walk(join(gw.dataDir, 'portal'));
    expect(hits).toEqual([]);
  });
});

async function fetchInsecure(url: string, init: RequestInit = {}): Promise<Response> {
  const { Agent, fetch } = await import('undici');
  return fetch(url.replace('postern.test', '127.0.0.1'), { ...init, redirect: 'manual', dispatcher: new Agent({ connect: { rejectUnauthorized: false } }) } as never) as unknown as Response;
}
