import { decodeHTML, decodeHTMLAttribute, decodeHTMLStrict } from 'entities';
import { foldForDetection } from './unicode-fold.js';

/**
 * Text of an HTML part as a reader sees it in a browser, for the PHI detectors only (the
 * message itself is never changed). It follows the HTML5 tokenizer where a difference would
 * let text be hidden from the detectors while a reader still sees it:
 *
 * - inline elements (span, b, font, unknown tags...) join their neighbours with no space, as
 *   a browser renders them: `123-<span>45</span>-6788` reads `123-45-6788`; block elements
 *   (p, div, br, td...) separate words;
 * - a `<` not followed by a letter, `/`, `!` or `?` is text; a quoted attribute value may
 *   hold `>`;
 * - comments end where a browser ends them (`<!-->`, `<!--->`, `-->`, `--!>`); an unclosed
 *   comment or tag hides the rest, as it does in a browser;
 * - script and style are matched by whole tag name and hidden up to their end tag;
 * - character references are decoded per HTML5 (the `entities` package), inside each text
 *   run only, so `&amp;#49;` stays `&#49;` and `&#4<b></b>9;` is not a reference;
 * - the text of `alt` (img, area, input: shown when images are not, the default of many mail
 *   clients) and `title` attributes (shown on hover) is read, as words of their own at the
 *   end of the block they are in: not at the element itself, so that an image or a titled
 *   span inside a number (`67<img alt=x>89`, `123-<span title=t>45</span>-6788`) leaves the
 *   number as it read without them. A number split by alt text is not joined.
 *
 * Where the browser is not copied exactly, the choice shows the detectors more, never less.
 * Linear in the input: every search moves forward, and no pattern backtracks.
 */
export function htmlToPlainText(html: string): string {
  const text = new TextExtractor(html).run();
  return normalizeForDetection(text);
}

/** Elements whose content a browser never shows: skipped up to their end tag. */
const HIDDEN_RAW_TEXT = new Set(['script', 'style']);
/**
 * Elements whose content is not markup and is shown (or may be) as it stands: xmp shows it;
 * iframe, noembed and noframes usually do not, but reading them costs only a possible extra
 * match. noscript is not here: mail clients run no scripts, so its content is shown and is
 * parsed as ordinary HTML. template content is inert in a browser but is also read as
 * ordinary HTML: hiding it would need tree building, and reading it only adds matches.
 */
const SHOWN_RAW_TEXT = new Set(['xmp', 'iframe', 'noembed', 'noframes']);
/** Text-only elements whose character references are decoded; title shows in the tab. */
const ESCAPABLE_RAW_TEXT = new Set(['title', 'textarea']);

/** Elements whose alt attribute is shown in place of an image (input: type=image). */
const ALT_SHOWN = new Set(['img', 'area', 'input']);

/** Elements that start a new line or cell on screen: their tags separate words. */
const BLOCK = new Set([
  'address', 'article', 'aside', 'blockquote', 'body', 'br', 'caption', 'center', 'col', 'colgroup',
  'dd', 'details', 'dialog', 'dir', 'div', 'dl', 'dt', 'fieldset', 'figcaption', 'figure', 'footer',
  'form', 'frame', 'frameset', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'head', 'header', 'hgroup', 'hr',
  'html', 'iframe', 'legend', 'li', 'listing', 'main', 'menu', 'nav', 'noframes', 'ol', 'optgroup',
  'option', 'p', 'plaintext', 'pre', 'section', 'summary', 'table', 'tbody', 'td', 'textarea',
  'tfoot', 'th', 'thead', 'title', 'tr', 'ul', 'xmp',
]);

const MAX_KNOWN_NAME = 10;

/** Attribute states of the HTML5 tokenizer, reduced to what decides where a tag ends. */
const enum AttrState {
  BeforeName,
  Name,
  AfterName,
  BeforeValue,
  AfterQuotedValue,
  UnquotedValue,
}

class TextExtractor {
  /** Text so far (V8 builds `+=` as a rope, flattened once at the end). */
  private out = '';
  /** Lower-case name of the tag `tag()` read last. */
  private tagName = '';
  /** Start of the text run not yet decoded into `out`. */
  private runStart = 0;
  /** Shown attribute text (alt, title) of the current block, put out at its end. */
  private attributeText = '';
  /** Shown attribute text of the tag `tag()` read last (dropped if the tag is never closed). */
  private tagAttributeText = '';
  private readonly commentEnd: ForwardFinder;
  private readonly commentBangEnd: ForwardFinder;

  constructor(private readonly html: string) {
    this.commentEnd = new ForwardFinder(html, '-->');
    this.commentBangEnd = new ForwardFinder(html, '--!>');
  }

  run(): string {
    const { html } = this;
    let i = 0;
    while (i < html.length) {
      const lt = html.indexOf('<', i);
      if (lt === -1) break;
      if (!this.startsMarkup(lt)) {
        i = lt + 1; // a '<' that is text stays in the current run
        continue;
      }
      this.flushText(lt);
      i = this.markup(lt);
      this.runStart = i;
    }
    this.flushText(html.length);
    this.blockBoundary();
    return this.out;
  }

  /** HTML5 "tag open state": only these characters after '<' start markup. */
  private startsMarkup(lt: number): boolean {
    const c = this.html.charCodeAt(lt + 1);
    if (isAsciiLetter(c) || c === 0x21 /* ! */ || c === 0x3f /* ? */) return true;
    // '</' at the very end is text; '</' followed by anything else is markup.
    return c === 0x2f /* / */ && lt + 2 < this.html.length;
  }

  /** Consumes the markup starting at `lt`; returns where text resumes. */
  private markup(lt: number): number {
    const { html } = this;
    const c = html.charCodeAt(lt + 1);
    if (c === 0x21 /* ! */) return html.startsWith('<!--', lt) ? this.comment(lt) : this.bogusComment(lt + 2);
    if (c === 0x3f /* ? */) return this.bogusComment(lt + 1);
    if (c === 0x2f /* / */) return this.endTag(lt);
    return this.startTag(lt);
  }

  private comment(lt: number): number {
    // From lt + 2 so that '<!-->' and '<!--->' close at once, as in a browser.
    const dashEnd = this.commentEnd.next(lt + 2);
    const bangEnd = this.commentBangEnd.next(lt + 4);
    if (dashEnd === -1 && bangEnd === -1) return this.html.length; // unclosed: hides the rest
    if (bangEnd === -1 || (dashEnd !== -1 && dashEnd < bangEnd)) return dashEnd + 3;
    return bangEnd + 4;
  }

  /** `<!DOCTYPE>`, `<![CDATA[...]>`, `<?...>`, `</ 1>`: all end at the first '>'. */
  private bogusComment(from: number): number {
    const gt = this.html.indexOf('>', from);
    return gt === -1 ? this.html.length : gt + 1;
  }

  private endTag(lt: number): number {
    const { html } = this;
    const c = html.charCodeAt(lt + 2);
    if (c === 0x3e /* > */) return lt + 3; // '</>' is dropped
    if (!isAsciiLetter(c)) return this.bogusComment(lt + 2);
    const end = this.tag(lt + 2, false);
    if (end === -1) return html.length;
    if (BLOCK.has(this.tagName)) this.blockBoundary();
    return end;
  }

  private startTag(lt: number): number {
    const end = this.tag(lt + 1, true);
    if (end === -1) return this.html.length; // a tag cut by the end of input is dropped
    const name = this.tagName;
    this.attributeText += this.tagAttributeText;
    if (BLOCK.has(name)) this.blockBoundary();
    if (name === 'plaintext') {
      this.out += this.html.slice(end);
      return this.html.length;
    }
    if (HIDDEN_RAW_TEXT.has(name) || SHOWN_RAW_TEXT.has(name) || ESCAPABLE_RAW_TEXT.has(name)) return this.rawText(name, end);
    return end;
  }

  /** Content of script, style, title... up to the matching end tag (or the end of input). */
  private rawText(name: string, from: number): number {
    const close = this.findEndTag(name, from);
    const to = close === -1 ? this.html.length : close;
    const content = this.html.slice(from, to);
    if (SHOWN_RAW_TEXT.has(name)) this.out += content;
    else if (ESCAPABLE_RAW_TEXT.has(name)) this.out += decodeReferences(content);
    return to; // the end tag itself is read as markup by the caller
  }

  /** Position of `</name` followed by whitespace, '/' or '>' (case-insensitive), or -1. */
  private findEndTag(name: string, from: number): number {
    const { html } = this;
    let at = from;
    for (;;) {
      const pos = html.indexOf('</', at);
      if (pos === -1) return -1;
      const after = pos + 2 + name.length;
      if (html.slice(pos + 2, after).toLowerCase() === name && endsTagName(html.charCodeAt(after))) return pos;
      at = pos + 2;
    }
  }

  /**
   * Reads a tag name from `from` into `tagName` (lower case) and its attributes (a start
   * tag's shown ones into `tagAttributeText`); returns the index after the closing '>', or
   * -1 when the input ends inside the tag.
   */
  private tag(from: number, start: boolean): number {
    const { html } = this;
    let i = from;
    while (i < html.length && !endsTagName(html.charCodeAt(i))) i++;
    // Longer names are never in the sets above: skip the copy, they are inline.
    this.tagName = i - from <= MAX_KNOWN_NAME ? html.slice(from, i).toLowerCase() : '';
    this.tagAttributeText = '';
    const gt = this.attributesEnd(i, start);
    return gt === -1 ? -1 : gt + 1;
  }

  /**
   * Index of the '>' closing a tag whose attributes start at `from`, following the HTML5
   * attribute states: a quote opens a value only right after '=' (so `<p title="a>b">`
   * ends at the last '>', and `<p = "x>` at the first). With `keep`, the values of shown
   * attributes go to `tagAttributeText`.
   */
  private attributesEnd(from: number, keep: boolean): number {
    const { html } = this;
    let state = AttrState.BeforeName;
    let nameStart = from;
    let nameEnd = from;
    let valueStart = from;
    let shown = false; // the attribute whose value comes next is shown
    for (let i = from; i < html.length; i++) {
      const c = html.charCodeAt(i);
      if (c === 0x3e /* > */) {
        // in every state outside a quoted value
        if (shown && state === AttrState.UnquotedValue) this.keepAttribute(valueStart, i);
        return i;
      }
      switch (state) {
        case AttrState.BeforeName:
          if (!isSpace(c) && c !== 0x2f /* / */) {
            state = AttrState.Name;
            nameStart = i;
          }
          break;
        case AttrState.Name:
          if (isSpace(c)) {
            state = AttrState.AfterName;
            nameEnd = i;
          } else if (c === 0x2f /* / */) state = AttrState.BeforeName;
          else if (c === 0x3d /* = */) {
            state = AttrState.BeforeValue;
            shown = keep && this.isShown(nameStart, i);
          }
          break;
        case AttrState.AfterName:
          if (c === 0x3d /* = */) {
            state = AttrState.BeforeValue;
            shown = keep && this.isShown(nameStart, nameEnd);
          } else if (c === 0x2f /* / */) state = AttrState.BeforeName;
          else if (!isSpace(c)) {
            state = AttrState.Name;
            nameStart = i;
          }
          break;
        case AttrState.BeforeValue:
          if (c === 0x22 /* " */ || c === 0x27 /* ' */) {
            const close = html.indexOf(html[i] as string, i + 1);
            if (close === -1) return -1;
            if (shown) this.keepAttribute(i + 1, close);
            i = close;
            state = AttrState.AfterQuotedValue;
          } else if (!isSpace(c)) {
            state = AttrState.UnquotedValue;
            valueStart = i;
          }
          break;
        case AttrState.AfterQuotedValue:
          state = isSpace(c) || c === 0x2f /* / */ ? AttrState.BeforeName : AttrState.Name;
          nameStart = i;
          break;
        case AttrState.UnquotedValue:
          if (isSpace(c)) {
            state = AttrState.BeforeName;
            if (shown) this.keepAttribute(valueStart, i);
          }
          break;
      }
    }
    return -1;
  }

  /** Whether the attribute named html[start, end) is shown by the tag just read: title, or alt of an image. */
  private isShown(start: number, end: number): boolean {
    const length = end - start;
    if (length !== 3 && length !== 5) return false; // the cheap test first: most attributes are neither
    const name = this.html.slice(start, end).toLowerCase();
    return name === 'title' || (name === 'alt' && ALT_SHOWN.has(this.tagName));
  }

  private keepAttribute(start: number, end: number): void {
    if (end > start) this.tagAttributeText += ` ${decodeHTMLAttribute(this.html.slice(start, end))} `;
  }

  /** The end of a block, or of the input: its shown attribute text, then a word break. */
  private blockBoundary(): void {
    this.out += this.attributeText ? `${this.attributeText} ` : ' ';
    this.attributeText = '';
  }

  /** Decodes the text run ending at `end` (exclusive) into the output. */
  private flushText(end: number): void {
    if (end > this.runStart) this.out += decodeReferences(this.html.slice(this.runStart, end));
  }
}

/**
 * Repeated forward searches for one needle. Remembers the last hit, so searching again from
 * a later point before that hit costs nothing: many comments before one far-away (or
 * missing) `--!>` stay linear instead of rescanning to the end each time.
 */
class ForwardFinder {
  private hit = -2; // -2: not searched yet; -1: no occurrence after `searchedFrom`
  private searchedFrom = 0;

  constructor(private readonly haystack: string, private readonly needle: string) {}

  next(from: number): number {
    if (this.hit === -1 && from >= this.searchedFrom) return -1;
    if (this.hit >= from && from >= this.searchedFrom) return this.hit;
    this.searchedFrom = from;
    this.hit = this.haystack.indexOf(this.needle, from);
    return this.hit;
  }
}

/**
 * Character references of one text run, decoded as a browser does in text content. A plain
 * loop rather than a replace callback: a body of nothing but `&nbsp;` costs half as much.
 */
function decodeReferences(text: string): string {
  let amp = text.indexOf('&');
  if (amp === -1) return text;
  let out = '';
  let done = 0;
  while (amp !== -1) {
    const end = referenceEnd(text, amp);
    if (end > amp + 1) {
      out += text.slice(done, amp) + decodeReference(text.slice(amp, end));
      done = end;
    }
    amp = text.indexOf('&', end);
  }
  return out + text.slice(done);
}

/**
 * End of the reference at `amp` as the tokenizer reads it: `&#x` hex digits, `&#` decimal
 * digits, or `&` a letter then letters and digits; each with an optional ';'.
 */
function referenceEnd(text: string, amp: number): number {
  let i = amp + 1;
  if (text.charCodeAt(i) === 0x23 /* # */) {
    i++;
    const hex = (text.charCodeAt(i) | 0x20) === 0x78; /* x or X */
    if (hex) i++;
    while (i < text.length && (hex ? isHexDigit(text.charCodeAt(i)) : isDigit(text.charCodeAt(i)))) i++;
  } else {
    if (!isAsciiLetter(text.charCodeAt(i))) return amp + 1;
    while (i < text.length && (isAsciiLetter(text.charCodeAt(i)) || isDigit(text.charCodeAt(i)))) i++;
  }
  return text.charCodeAt(i) === 0x3b /* ; */ ? i + 1 : i;
}

/**
 * Decoded references by their source text: a body repeats the same few (`&nbsp;`, `&amp;`)
 * thousands of times. Bounded, so hostile input cannot grow it.
 */
const decodedCache = new Map<string, string>();
const CACHE_LIMIT = 2048;

function decodeReference(ref: string): string {
  let decoded = decodedCache.get(ref);
  if (decoded === undefined) {
    decoded = decodeUncached(ref);
    if (decodedCache.size < CACHE_LIMIT) decodedCache.set(ref, decoded);
  }
  return decoded;
}

function decodeUncached(ref: string): string {
  const decoded = decodeHTML(ref); // HTML5 rules: legacy names without ';', &#51 without ';'
  if (decoded !== ref || !ref.endsWith(';')) return decoded;
  // Names are case-sensitive in HTML5, so a browser shows `&NBSP;` as typed. A reader still
  // reads a space there; matching the lower-case name (whole names only) shows the
  // detectors the same, as the previous decoder did.
  const lower = ref.toLowerCase();
  if (lower === ref) return ref;
  const folded = decodeHTMLStrict(lower);
  return folded === lower ? ref : folded;
}

/**
 * Look-alike characters folded (unicode-fold.ts, shared with plain text), then whitespace
 * runs become one space: line breaks in HTML source are not line breaks on screen.
 */
function normalizeForDetection(text: string): string {
  return foldForDetection(text)
    .replace(/[ \t\n\r\f]+/g, ' ')
    .trim();
}

function isAsciiLetter(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}

/** HTML whitespace (CR too: a browser turns it into LF before tokenizing). */
function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0c || c === 0x0d;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function isHexDigit(c: number): boolean {
  return isDigit(c) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x66);
}

/** What ends a tag name: whitespace, '/' or '>'. */
function endsTagName(c: number): boolean {
  return isSpace(c) || c === 0x2f || c === 0x3e;
}
