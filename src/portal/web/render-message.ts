import { simpleParser, type ParsedMail } from 'mailparser';
import sanitizeHtml from 'sanitize-html';
import { escapeHtml } from '../compose.js';

export interface ShownMessage {
  subject: string;
  from: string;
  to: string;
  date?: Date | undefined;
  messageId?: string | undefined;
  references?: string | undefined;
  attachments: { filename: string; contentType: string; size: number; content: Buffer }[];
  parsed: ParsedMail;
}

export async function parseStored(raw: Buffer): Promise<ShownMessage> {
  const parsed = await simpleParser(raw, { skipImageLinks: true, skipTextLinks: true });
  return {
    subject: parsed.subject ?? '(no subject)',
    from: parsed.from?.text ?? '',
    to: [parsed.to].flat().filter(Boolean).map((a) => (a as { text: string }).text).join(', '),
    date: parsed.date,
    messageId: parsed.messageId,
    references: [parsed.references].flat().filter(Boolean).join(' ') || undefined,
    attachments: parsed.attachments
      .filter((a) => a.contentDisposition !== 'inline' || !a.cid)
      .map((a, i) => ({ filename: shownFilename(a.filename, i), contentType: a.contentType, size: a.size, content: a.content })),
    parsed,
  };
}

/** Bidi embeddings, overrides and isolates (U+202A–202E, U+2066–2069): "report.pdf<RLO>lmth.exe" shows as "report.pdfexe.html". */
const BIDI_CONTROLS = /[\u202A-\u202E\u2066-\u2069]/g;

/**
 * An attachment's name as shown and downloaded: well-formed (a lone surrogate, which a
 * name decoded from UTF-16 may hold, becomes U+FFFD, so it can be percent-encoded) and
 * without bidi controls, which would show it with another extension than it has.
 */
export function shownFilename(name: string | undefined, index: number): string {
  const clean = (name ?? '').replace(BIDI_CONTROLS, '');
  // String.prototype.toWellFormed is in Node 20 (ES2024), not yet in the ES2023 lib types.
  return (clean as string & { toWellFormed(): string }).toWellFormed() || `attachment-${index + 1}`;
}

/**
 * A URL attribute as a browser reads it (WHATWG URL parsing): leading and trailing C0
 * controls and spaces stripped, tabs and line breaks removed anywhere. Read raw, a
 * src of " https://tracker/p.png" or "ht\ttps:..." was not seen as remote: the frame's
 * CSP still refused it, but it was not counted, so the reader was not told.
 */
function urlAsBrowsersRead(value: string): string {
  // eslint-disable-next-line no-control-regex
  return value.replace(/^[\u0000-\u0020]+|[\u0000-\u0020]+$/g, '').replace(/[\t\n\r]/g, '');
}

const BLOCKED_IMAGE = 'data:image/svg+xml;base64,' + Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>').toString('base64');

/**
 * The message body as a standalone HTML document for the sandboxed frame. HTML is
 * sanitised (sanitize-html: no scripts, no event handlers, no forms, no styles that
 * load anything); remote images are replaced unless the reader asked for them; inline
 * (cid:) images come from the message itself; links open in a new tab without opener.
 */
export function bodyDocument(msg: ShownMessage, showImages: boolean): { html: string; blockedImages: number } {
  let blocked = 0;
  const inline = new Map(msg.parsed.attachments.filter((a) => a.cid).map((a) => [a.cid as string, a]));
  const source = msg.parsed.html || (msg.parsed.textAsHtml ?? `<pre>${escapeHtml(msg.parsed.text ?? '')}</pre>`);
  const clean = sanitizeHtml(source, {
    allowedTags: sanitizeHtml.defaults.allowedTags.concat(['img', 'center', 'font', 'span']),
    allowedAttributes: {
      a: ['href', 'title', 'target', 'rel'],
      img: ['src', 'alt', 'width', 'height'],
      '*': ['align', 'valign', 'colspan', 'rowspan', 'width'],
    },
    allowedSchemes: ['https', 'http', 'mailto', 'tel'],
    allowedSchemesByTag: { img: ['https', 'http', 'data', 'cid'] },
    allowProtocolRelative: false,
    allowedStyles: {},
    transformTags: {
      a: (tag, attribs) => ({ tagName: 'a', attribs: { ...attribs, target: '_blank', rel: 'noopener noreferrer nofollow' } }),
      img: (tag, attribs) => {
        const src = urlAsBrowsersRead(attribs.src ?? '');
        if (/^cid:/i.test(src)) {
          const part = inline.get(src.slice(4));
          return { tagName: 'img', attribs: { ...attribs, src: part && /^image\//.test(part.contentType) ? `data:${part.contentType};base64,${part.content.toString('base64')}` : BLOCKED_IMAGE } };
        }
        if (/^https?:/i.test(src) && !showImages) {
          blocked++;
          return { tagName: 'img', attribs: { ...attribs, src: BLOCKED_IMAGE, alt: `[image blocked: ${attribs.alt ?? 'remote image'}]` } };
        }
        return { tagName: 'img', attribs: { ...attribs, src } };
      },
    },
  });
  return { html: `<!doctype html><html><head><meta charset="utf-8"><base target="_blank"><style>body{font-family:system-ui,sans-serif;margin:0;padding:1em;word-wrap:break-word;color:#111}img{max-width:100%;height:auto}pre{white-space:pre-wrap}</style></head><body>${clean}</body></html>`, blockedImages: blocked };
}
