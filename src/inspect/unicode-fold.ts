import { asciiDigit, DIGIT_ZEROS } from './unicode-digits.js';

/**
 * Text as the detectors must read it, whatever script or typography it was written in; for
 * detection only, the message is never changed. Characters that render as nothing are
 * removed, look-alike spaces and dashes become ASCII ones, full-width ASCII (U+FF01-FF5E)
 * becomes ASCII and the decimal digits of every script become 0-9: so `123&shy;-45&#8209;6788`,
 * `１２３−４５−６７８８`, `١٢٣-٤٥-٦٧٨٨` or digits split by a zero-width space read as the
 * number a reader sees, and `ＳＳＮ` as the word. Shared by plain text, HTML text and
 * header fields, so that no path reads less than another.
 *
 * Text with no character above U+00FF (most mail in Western languages, and the text of most
 * HTML) can hold only two that fold, the no-break space and the soft hyphen: two constant
 * replacements, which V8 runs natively, and the test that decides it is answered at once on
 * a string V8 stores one byte per character. Any other text takes one pass with a table per
 * UTF-16 unit, copying only when something is replaced: a regular expression per kind of
 * character cost 1-15 ms per MB each there (V8 tests a class of many ranges one range at a
 * time). Callers skip texts they know to be ASCII (see part-text.ts).
 */
export function foldForDetection(text: string): string {
  if (!BEYOND_LATIN1.test(text)) return text.replace(SOFT_HYPHEN, '').replace(NO_BREAK_SPACE, ' ');
  let out = '';
  let copied = 0; // text[copied...] is not in `out` yet
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0xa0) continue; // ASCII and C1 controls: nothing here is folded
    const action = TABLE[unit]!;
    if (action === KEEP) continue;
    let replacement: string | undefined;
    let width = 1;
    if (action === SURROGATE) {
      replacement = astral(text.codePointAt(i)!);
      if (replacement === undefined) continue;
      width = 2;
    } else replacement = action === DROP ? '' : String.fromCharCode(action);
    out += text.slice(copied, i) + replacement;
    copied = i + width;
    i += width - 1;
  }
  return copied === 0 ? text : out + text.slice(copied);
}

const BEYOND_LATIN1 = /[^\u0000-\u00ff]/;
/** The only characters up to U+00FF that fold (the table below agrees: see buildTable). */
const SOFT_HYPHEN = /\u00ad/g;
const NO_BREAK_SPACE = /\u00a0/g;

/** TABLE values below 0x20; any other value is the ASCII character a unit becomes. */
const KEEP = 0;
const DROP = 1;
/** A high surrogate that may start a character folded (an astral digit, a tag character). */
const SURROGATE = 2;

/**
 * Format characters that render as nothing: soft hyphen, combining grapheme joiner, Arabic
 * letter mark, Mongolian vowel separator, zero-width space/non-joiner/joiner, bidi marks,
 * embeddings and isolates, word joiner, invisible operators, deprecated format characters,
 * zero-width no-break space (BOM). (Also the tag characters, U+E0001 and U+E0020-E007F, an
 * invisible copy of ASCII: see astral().)
 */
const INVISIBLE: [number, number][] = [[0xad, 0xad], [0x34f, 0x34f], [0x61c, 0x61c], [0x180e, 0x180e], [0x200b, 0x200f], [0x202a, 0x202e], [0x2060, 0x2064], [0x2066, 0x206f], [0xfeff, 0xfeff]];
/** No-break space and the other Unicode spaces (Zs), line and paragraph separators. */
const SPACES: [number, number][] = [[0xa0, 0xa0], [0x1680, 0x1680], [0x2000, 0x200a], [0x2028, 0x2029], [0x202f, 0x202f], [0x205f, 0x205f], [0x3000, 0x3000]];
/** Dash punctuation (Pd) of the BMP but the ASCII hyphen-minus, and the minus sign. */
const DASHES: [number, number][] = [
  [0x58a, 0x58a], [0x5be, 0x5be], [0x1400, 0x1400], [0x1806, 0x1806], [0x2010, 0x2015], [0x2212, 0x2212], [0x2e17, 0x2e17], [0x2e1a, 0x2e1a],
  [0x2e3a, 0x2e3b], [0x2e40, 0x2e40], [0x2e5d, 0x2e5d], [0x301c, 0x301c], [0x3030, 0x3030], [0x30a0, 0x30a0], [0xfe31, 0xfe32], [0xfe58, 0xfe58], [0xfe63, 0xfe63],
];
const TAG_HIGH = 0xdb40;

/** What each UTF-16 unit becomes (64 KB, built once). */
const TABLE = buildTable();

function buildTable(): Uint8Array {
  const table = new Uint8Array(0x10000);
  const fill = (ranges: [number, number][], value: number) => ranges.forEach(([from, to]) => table.fill(value, from, to + 1));
  fill(INVISIBLE, DROP);
  fill(SPACES, 0x20);
  fill(DASHES, 0x2d);
  for (let unit = 0xff01; unit <= 0xff5e; unit++) table[unit] = unit - 0xfee0; // full-width ASCII
  for (const zero of DIGIT_ZEROS) {
    for (let cp = zero; cp <= zero + 9; cp++) {
      if (cp < 0x10000) table[cp] = 0x30 + cp - zero;
      else table[0xd800 + ((cp - 0x10000) >> 10)] = SURROGATE;
    }
  }
  table[TAG_HIGH] = SURROGATE;
  // The Latin-1 fast path in foldForDetection replaces these two only.
  for (let unit = 0xa0; unit <= 0xff; unit++) if (table[unit] !== KEEP && unit !== 0xa0 && unit !== 0xad) throw new Error(`U+${unit.toString(16)} folds: add it to the Latin-1 path`);
  return table;
}

/** An astral character's replacement: its digit, nothing for a tag character, else undefined (kept). */
function astral(cp: number): string | undefined {
  if (cp === 0xe0001 || (cp >= 0xe0020 && cp <= 0xe007f)) return '';
  return asciiDigit(cp);
}
