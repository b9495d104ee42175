import type { MimeNode } from '@zone-eu/mailsplit';
import libmime from 'libmime';
import { foldForDetection } from './unicode-fold.js';

/**
 * The words a part says about itself, as a reader's mail client shows them: its file name
 * (Content-Disposition filename, else Content-Type name, each decoded from RFC 2231 or
 * RFC 2047 form by the splitter), the Content-Type name as well when it differs (clients
 * differ in which they show), and Content-Description. Attachments are commonly named
 * after the patient ("Doe John SSN 524-12-3456.pdf"), so the detectors read these as they
 * read the subject: folded (full-width digits, invisible characters), one per line.
 * Undefined when the part says nothing.
 */
export function partNamesText(node: MimeNode): string | undefined {
  const names = new Set<string>();
  if (node.filename) names.add(node.filename);
  const typeName = contentTypeName(node);
  if (typeName) names.add(typeName);
  const description = decodeWords((node.headers ? node.headers.getFirst('content-description') : '')).trim();
  if (description) names.add(description);
  return names.size ? foldForDetection([...names].join('\n')) : undefined;
}

/** Content-Type's name parameter, decoded (an RFC 2231 one is decoded by the parser already). */
function contentTypeName(node: MimeNode): string | undefined {
  const header = node.headers ? node.headers.getFirst('content-type') : '';
  if (!header) return undefined;
  try {
    const parsed = libmime.parseHeaderValue(header, { stripComments: true });
    const name = parsed.params.name;
    if (!name) return undefined;
    return parsed.decodedParams.includes('name') ? name : decodeWords(name);
  } catch {
    return undefined;
  }
}

/** RFC 2047 encoded words decoded; a malformed one stays as it came. */
function decodeWords(text: string): string {
  try {
    return libmime.decodeWords(text);
  } catch {
    return text;
  }
}
