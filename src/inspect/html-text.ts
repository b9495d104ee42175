/**
 * Text of an HTML part, good enough for detectors to read: scripts, styles and comments
 * dropped, tags turned into spaces, common entities decoded. Linear in the input (no
 * backtracking patterns), so hostile HTML costs no more than its length.
 */
export function htmlToPlainText(html: string): string {
  let out = '';
  let i = 0;
  const lower = html.toLowerCase();
  while (i < html.length) {
    const lt = html.indexOf('<', i);
    if (lt === -1) {
      out += html.slice(i);
      break;
    }
    out += html.slice(i, lt);
    if (lower.startsWith('<!--', lt)) {
      const end = html.indexOf('-->', lt + 4);
      i = end === -1 ? html.length : end + 3;
      continue;
    }
    const skipTo = lower.startsWith('<script', lt) ? '</script' : lower.startsWith('<style', lt) ? '</style' : undefined;
    if (skipTo) {
      const end = lower.indexOf(skipTo, lt);
      const close = end === -1 ? -1 : html.indexOf('>', end);
      i = close === -1 ? html.length : close + 1;
      out += ' ';
      continue;
    }
    const gt = html.indexOf('>', lt);
    i = gt === -1 ? html.length : gt + 1;
    out += ' ';
  }
  return decodeEntities(out).replace(/[ \t\r\n]+/g, ' ').trim();
}

const NAMED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' };

function decodeEntities(text: string): string {
  return text.replace(/&(#\d{1,7}|#x[0-9a-f]{1,6}|[a-z]{2,8});/gi, (whole, ref: string) => {
    if (ref[0] === '#') {
      const code = ref[1] === 'x' || ref[1] === 'X' ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
      return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : whole;
    }
    return NAMED[ref.toLowerCase()] ?? whole;
  });
}
