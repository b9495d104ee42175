import { describe, expect, it } from 'vitest';
import { portalApps } from '../helpers/portal-app.js';

const part = (disposition: string, body: string, type = 'application/octet-stream') => ['--b1', `Content-Type: ${type}`, `Content-Disposition: attachment; ${disposition}`, 'Content-Transfer-Encoding: base64', '', Buffer.from(body).toString('base64')];

const RAW = Buffer.from(
  [
    'From: dr@clinic.test',
    'To: p@patients.test',
    'Subject: Results',
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="b1"',
    '',
    '--b1',
    'Content-Type: text/plain; charset=utf-8',
    '',
    'See the files.',
    // Decoded from UTF-16BE, the name starts with a lone high surrogate.
    ...part("filename*=utf-16be''%D8%00%00a%00.%00t%00x%00t", 'lone surrogate'),
    // A right-to-left override: shown as "report.pdflmth.exe" reversed, i.e. "report.pdfexe.html".
    ...part('filename="report.pdf\u202Elmth.exe"', '<p>not a pdf</p>', 'text/html'),
    ...part('filename="\u2066\u202E\u2069"', 'nothing left of the name'),
    '--b1--',
    '',
  ].join('\r\n'),
);

describe('portal web app: attachment names', () => {
  const start = portalApps();

  it('a name with a lone surrogate downloads (not 500), and bidi controls are taken out of shown and downloaded names', async () => {
    const portal = await start();
    const m = await portal.files.putMessage(RAW, { createdAt: Date.now(), expiresAt: Date.now() + 60_000, sender: 'dr@clinic.test', recipients: ['p@patients.test'], queueId: 'Q1', kind: 'received' });
    const cookie = await portal.loggedIn('p@patients.test');
    const page = await portal.app.inject({ method: 'GET', url: `/message/${m.id}`, headers: { cookie } });
    expect(page.statusCode).toBe(200);
    expect(page.body).not.toMatch(/[\u202A-\u202E\u2066-\u2069]/);
    expect(page.body).toContain('report.pdflmth.exe');
    expect(page.body).toContain('\uFFFDa.txt');

    const download = (n: number) => portal.app.inject({ method: 'GET', url: `/message/${m.id}/attachment/${n}`, headers: { cookie } });
    const lone = await download(0);
    expect(lone.statusCode).toBe(200);
    expect(lone.body).toBe('lone surrogate');
    expect(lone.headers['content-disposition']).toBe(`attachment; filename="_a.txt"; filename*=UTF-8''${encodeURIComponent('\uFFFDa.txt')}`);

    const bidi = await download(1);
    expect(bidi.statusCode).toBe(200);
    expect(bidi.headers['content-disposition']).toBe(`attachment; filename="report.pdflmth.exe"; filename*=UTF-8''report.pdflmth.exe`);

    const empty = await download(2);
    expect(empty.headers['content-disposition']).toBe(`attachment; filename="attachment-3"; filename*=UTF-8''attachment-3`);
  });
});
