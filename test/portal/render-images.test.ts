import { describe, expect, it } from 'vitest';
import { bodyDocument, parseStored } from '../../src/portal/web/render-message.js';

function html(body: string): Buffer {
  return Buffer.from(
    [
      'From: dr@clinic.test',
      'To: patient@patients.test',
      'Subject: images',
      'MIME-Version: 1.0',
      'Content-Type: multipart/related; boundary="b"',
      '',
      '--b',
      'Content-Type: text/html; charset=utf-8',
      '',
      body,
      '--b',
      'Content-Type: image/png',
      'Content-ID: <logo@clinic>',
      'Content-Transfer-Encoding: base64',
      '',
      Buffer.from('PNGDATA').toString('base64'),
      '--b--',
      '',
    ].join('\r\n'),
  );
}

describe('portal message body: remote images', () => {
  // Browsers strip leading/trailing spaces and controls from a URL and drop tabs and line
  // breaks inside it; the frame's CSP refuses such an image anyway, but the reader must be
  // told it was blocked (and offered "Show images"), and the src shown must be the real one.
  it('counts and replaces an image whose src a browser would read as remote', async () => {
    const srcs = [' https://tracker.example/a.png', '\thttps://tracker.example/b.png', 'ht\ntps://tracker.example/c.png', 'https://tracker.example/d.png '];
    const msg = await parseStored(html(srcs.map((s) => `<img src="${s.replace(/\n/g, '&#10;').replace(/\t/g, '&#9;')}" alt="x">`).join('')));
    const { html: doc, blockedImages } = bodyDocument(msg, false);
    expect(blockedImages).toBe(4);
    expect(doc).not.toMatch(/tracker\.example/);
  });

  it('shows inline images whatever the case of the cid: scheme, and remote ones only when asked', async () => {
    const msg = await parseStored(html('<img src="CID:logo@clinic" alt="logo"><img src=" https://tracker.example/a.png">'));
    const blocked = bodyDocument(msg, false);
    expect(blocked.html).toContain(`data:image/png;base64,${Buffer.from('PNGDATA').toString('base64')}`);
    expect(blocked.blockedImages).toBe(1);
    const shown = bodyDocument(msg, true);
    expect(shown.blockedImages).toBe(0);
    expect(shown.html).toContain('src="https://tracker.example/a.png"');
  });
});
