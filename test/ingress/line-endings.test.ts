import { describe, expect, it } from 'vitest';
import { LineEndingGuard } from '../../src/ingress/line-endings.js';

type Mode = 'reject' | 'normalize';

/** Feeds the chunks; returns what the guard stores and its verdict. */
function run(mode: Mode, chunks: string[]): { out: string; bare: boolean; refused: boolean } {
  const guard = new LineEndingGuard(mode);
  const parts: Buffer[] = [];
  for (const c of chunks) parts.push(guard.push(Buffer.from(c, 'latin1')));
  parts.push(guard.end());
  return { out: Buffer.concat(parts).toString('latin1'), bare: guard.bareFound, refused: guard.refused };
}

/** Independent reference: a bare CR is one not followed by LF, a bare LF one not preceded by CR. */
const refHasBare = (s: string) => /\r(?!\n)|(?<!\r)\n/.test(s);
/**
 * Every line ending becomes CRLF, and a line after a bare CR loses the escape dot of a
 * leading ".." as one after CRLF or a bare LF does in smtp-server (the guard sees what
 * smtp-server passes on: those lines are unstuffed already).
 */
const refNormalize = (s: string) => s.replace(/\r\n|\r(\.\.)?|\n/g, (_m, dots?: string) => (dots ? '\r\n.' : '\r\n'));

const show = (s: string | string[]) => JSON.stringify(s);

// Inputs for the table and the split property. Latin-1 strings, one char per byte.
const CASES: { name: string; input: string; bare: boolean; normalized: string }[] = [
  { name: 'clean CRLF text', input: 'Subject: hi\r\n\r\nline 1\r\nline 2\r\n', bare: false, normalized: 'Subject: hi\r\n\r\nline 1\r\nline 2\r\n' },
  { name: 'empty body', input: '', bare: false, normalized: '' },
  { name: 'no line endings at all', input: 'abc', bare: false, normalized: 'abc' },
  { name: 'only CRLFs', input: '\r\n\r\n\r\n', bare: false, normalized: '\r\n\r\n\r\n' },
  { name: 'bare LF', input: 'a\nb\r\n', bare: true, normalized: 'a\r\nb\r\n' },
  { name: 'bare LF first', input: '\nabc\r\n', bare: true, normalized: '\r\nabc\r\n' },
  { name: 'bare CR', input: 'a\rb\r\n', bare: true, normalized: 'a\r\nb\r\n' },
  { name: 'CR CR LF', input: 'a\r\r\nb', bare: true, normalized: 'a\r\n\r\nb' },
  { name: 'LF CR (reversed)', input: 'a\n\rb', bare: true, normalized: 'a\r\n\r\nb' },
  { name: 'trailing lone CR', input: 'abc\r\n.\r', bare: true, normalized: 'abc\r\n.\r\n' },
  { name: 'trailing bare LF', input: 'abc\r\n.\n', bare: true, normalized: 'abc\r\n.\r\n' },
  { name: 'smuggling <LF>.<LF>', input: 'Subject: x\r\n\r\nhi\n.\nMAIL FROM:<evil@example>\r\n', bare: true, normalized: 'Subject: x\r\n\r\nhi\r\n.\r\nMAIL FROM:<evil@example>\r\n' },
  { name: 'smuggling <CR>.<CR>', input: 'hi\r.\rRCPT TO:<x@y>\r\n', bare: true, normalized: 'hi\r\n.\r\nRCPT TO:<x@y>\r\n' },
  { name: 'smuggling <LF>.<CR><LF>', input: 'hi\n.\r\nQUIT\r\n', bare: true, normalized: 'hi\r\n.\r\nQUIT\r\n' },
  { name: 'many CRs', input: '\r\r\r\r', bare: true, normalized: '\r\n\r\n\r\n\r\n' },
  { name: 'many LFs', input: '\n\n\n', bare: true, normalized: '\r\n\r\n\r\n' },
  { name: 'mixture', input: 'a\r\nb\nc\rd\r\r\ne\n\rf\r\n\n', bare: true, normalized: 'a\r\nb\r\nc\r\nd\r\n\r\ne\r\n\r\nf\r\n\r\n' },
  { name: 'binary-ish bytes', input: '\x01\xff\r\n\x80\x0d\x0a', bare: false, normalized: '\x01\xff\r\n\x80\r\n' },
  { name: 'stuffed dot after a bare CR', input: 'a\r..b\r\n', bare: true, normalized: 'a\r\n.b\r\n' },
  { name: 'stuffed dots after bare CRs, and one alone', input: '\r..\r...\r.x\r..', bare: true, normalized: '\r\n.\r\n..\r\n.x\r\n.' },
  { name: 'dot line after a bare CR (not an end of data)', input: 'hi\r.\r\nQUIT\r\n', bare: true, normalized: 'hi\r\n.\r\nQUIT\r\n' },
  { name: 'dots after CRLF are not the guard\'s', input: 'a\r\n..b\r\n', bare: false, normalized: 'a\r\n..b\r\n' },
];

describe('reference sanity', () => {
  it.each(CASES)('$name: table agrees with the reference', ({ input, bare, normalized }) => {
    expect(refHasBare(input)).toBe(bare);
    expect(refNormalize(input)).toBe(normalized);
  });
});

describe('LineEndingGuard, reject mode', () => {
  it.each(CASES)('$name (one chunk)', ({ input, bare }) => {
    const r = run('reject', [input]);
    expect(r.bare).toBe(bare);
    expect(r.refused).toBe(bare);
    // Reject mode never rewrites: what is stored is exactly what came in.
    expect(r.out).toBe(input);
  });

  it('CR at the end of one chunk and LF at the start of the next is not bare', () => {
    const r = run('reject', ['line 1\r', '\nline 2\r\n']);
    expect(r.bare).toBe(false);
    expect(r.refused).toBe(false);
  });

  it('CR at the end of one chunk followed by other bytes is bare', () => {
    expect(run('reject', ['line 1\r', 'line 2\r\n']).refused).toBe(true);
    expect(run('reject', ['line 1\r', '\r\nline 2\r\n']).refused).toBe(true);
  });

  it('LF at the start of a chunk after a chunk not ending in CR is bare', () => {
    expect(run('reject', ['line 1', '\nline 2\r\n']).refused).toBe(true);
  });

  it('a trailing lone CR is found only at end()', () => {
    const guard = new LineEndingGuard('reject');
    guard.push(Buffer.from('abc\r\n.\r'));
    expect(guard.refused).toBe(false);
    expect(guard.end().length).toBe(0);
    expect(guard.refused).toBe(true);
  });

  it('a chunk of a single CR between CRLF pieces', () => {
    expect(run('reject', ['a', '\r', '\nb']).refused).toBe(false);
    expect(run('reject', ['a', '\r', '\r', '\nb']).refused).toBe(true);
  });

  it('once refused, stays refused', () => {
    const guard = new LineEndingGuard('reject');
    guard.push(Buffer.from('a\nb'));
    guard.push(Buffer.from('clean\r\n'));
    guard.end();
    expect(guard.refused).toBe(true);
  });

  it('returns the same buffer it was given', () => {
    const guard = new LineEndingGuard('reject');
    const chunk = Buffer.from('a\nb');
    expect(guard.push(chunk)).toBe(chunk);
  });

  it('end() of a clean message appends nothing', () => {
    const guard = new LineEndingGuard('reject');
    guard.push(Buffer.from('abc\r\n'));
    expect(guard.end().length).toBe(0);
    expect(guard.refused).toBe(false);
  });
});

describe('LineEndingGuard, normalize mode', () => {
  it.each(CASES)('$name (one chunk) → exact bytes', ({ input, bare, normalized }) => {
    const r = run('normalize', [input]);
    expect(show(r.out)).toBe(show(normalized));
    expect(r.bare).toBe(bare);
    // Normalize mode records what it found but never refuses.
    expect(r.refused).toBe(false);
  });

  it('leaves CRLF text untouched and returns the very same buffer', () => {
    const guard = new LineEndingGuard('normalize');
    const chunk = Buffer.from('a\r\nb\r\n');
    expect(guard.push(chunk)).toBe(chunk);
    expect(guard.end().length).toBe(0);
    expect(guard.bareFound).toBe(false);
  });

  it('CR at the end of a chunk, LF at the start of the next: CRLF kept as is', () => {
    const guard = new LineEndingGuard('normalize');
    const a = guard.push(Buffer.from('line 1\r'));
    const b = guard.push(Buffer.from('\nline 2\r\n'));
    const c = guard.end();
    expect(a.toString('latin1')).toBe('line 1\r');
    expect(b.toString('latin1')).toBe('\nline 2\r\n');
    expect(c.length).toBe(0);
    expect(guard.bareFound).toBe(false);
  });

  it('CR at the end of a chunk followed by other bytes: LF inserted at the start of the next', () => {
    const guard = new LineEndingGuard('normalize');
    const a = guard.push(Buffer.from('line 1\r'));
    const b = guard.push(Buffer.from('line 2\r\n'));
    expect(a.toString('latin1')).toBe('line 1\r');
    expect(b.toString('latin1')).toBe('\nline 2\r\n');
    expect(guard.bareFound).toBe(true);
  });

  it('CR at the end of a chunk followed by CRLF', () => {
    expect(show(run('normalize', ['x\r', '\r\ny']).out)).toBe(show('x\r\n\r\ny'));
  });

  it('CR at the end of a chunk followed by a chunk that is a single CR', () => {
    expect(show(run('normalize', ['x\r', '\r', 'y']).out)).toBe(show('x\r\n\r\ny'));
    expect(show(run('normalize', ['x\r', '\r', '\ny']).out)).toBe(show('x\r\n\r\ny'));
  });

  it('a trailing lone CR gets its LF from end()', () => {
    const guard = new LineEndingGuard('normalize');
    const a = guard.push(Buffer.from('abc\r\n.\r'));
    expect(guard.bareFound).toBe(false);
    const tail = guard.end();
    expect(a.toString('latin1')).toBe('abc\r\n.\r');
    expect(tail.toString('latin1')).toBe('\n');
    expect(guard.bareFound).toBe(true);
    expect(guard.refused).toBe(false);
  });

  it('LF at the start of a chunk after a chunk without CR becomes CRLF', () => {
    expect(show(run('normalize', ['line 1', '\nline 2']).out)).toBe(show('line 1\r\nline 2'));
  });

  it('a stuffed dot after a bare CR loses its escape dot wherever the chunks split', () => {
    expect(show(run('normalize', ['a\r', '..b']).out)).toBe(show('a\r\n.b'));
    expect(show(run('normalize', ['a\r.', '.b']).out)).toBe(show('a\r\n.b'));
    expect(show(run('normalize', ['a\r.', '', '.b']).out)).toBe(show('a\r\n.b'));
    expect(show(run('normalize', ['a\r.', 'b']).out)).toBe(show('a\r\n.b'));
    expect(show(run('normalize', ['a\r.']).out)).toBe(show('a\r\n.'));
    // Only the line's first dot pair: "a\r.x.." keeps its later dots.
    expect(show(run('normalize', ['a\r.x', '..']).out)).toBe(show('a\r\n.x..'));
  });

  it('the <LF>.<LF> smuggling sequence split across three chunks', () => {
    expect(show(run('normalize', ['hi\n', '.', '\nMAIL FROM:<e@x>\r\n']).out)).toBe(show('hi\r\n.\r\nMAIL FROM:<e@x>\r\n'));
  });
});

describe('verdict and output do not depend on where chunks are split', () => {
  const inputs = [
    ...CASES.map((c) => c.input),
    'Subject: a\r\n\r\nx\r\r\ny\n\rz\r',
    '\r',
    '\n',
    '\r\n',
    '\n\r',
    '.\r\n.\r.\n.',
  ];

  for (const mode of ['reject', 'normalize'] as const) {
    it(`${mode}: every split into 2 non-empty chunks`, () => {
      let checked = 0;
      for (const input of inputs) {
        const whole = run(mode, [input]);
        for (let at = 1; at < input.length; at++) {
          const split = run(mode, [input.slice(0, at), input.slice(at)]);
          const where = `${mode} ${show(input)} split at ${at}`;
          expect(split.bare, where).toBe(whole.bare);
          expect(split.refused, where).toBe(whole.refused);
          expect(show(split.out), where).toBe(show(whole.out));
          // And both agree with the reference.
          expect(split.bare, where).toBe(refHasBare(input));
          expect(show(split.out), where).toBe(show(mode === 'normalize' ? refNormalize(input) : input));
          checked++;
        }
      }
      expect(checked).toBeGreaterThan(200);
    });

    it(`${mode}: every split into 3 non-empty chunks`, () => {
      for (const input of inputs) {
        for (let a = 1; a < input.length; a++) {
          for (let b = a + 1; b < input.length; b++) {
            const r = run(mode, [input.slice(0, a), input.slice(a, b), input.slice(b)]);
            const where = `${mode} ${show(input)} split at ${a},${b}`;
            expect(r.bare, where).toBe(refHasBare(input));
            expect(show(r.out), where).toBe(show(mode === 'normalize' ? refNormalize(input) : input));
          }
        }
      }
    });

    it(`${mode}: byte-at-a-time equals one chunk`, () => {
      for (const input of inputs) {
        const r = run(mode, input.split(''));
        expect(r.bare, show(input)).toBe(refHasBare(input));
        expect(show(r.out), show(input)).toBe(show(mode === 'normalize' ? refNormalize(input) : input));
      }
    });
  }

  it('random inputs over {CR, LF, ".", "a"} split at random points', () => {
    let seed = 12345;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      // The high bits: an LCG's lowest ones repeat every few calls, which left whole
      // patterns (a bare CR followed by "..") out of every input.
      return (seed >>> 16) % n;
    };
    const alphabet = ['\r', '\n', '.', 'a'];
    for (let trial = 0; trial < 2000; trial++) {
      const len = rand(12);
      let input = '';
      for (let i = 0; i < len; i++) input += alphabet[rand(4)];
      const chunks: string[] = [];
      let rest = input;
      while (rest.length) {
        const n = 1 + rand(rest.length);
        chunks.push(rest.slice(0, n));
        rest = rest.slice(n);
      }
      for (const mode of ['reject', 'normalize'] as const) {
        const r = run(mode, chunks);
        const where = `${mode} ${show(input)} as ${show(chunks)}`;
        expect(r.bare, where).toBe(refHasBare(input));
        expect(r.refused, where).toBe(mode === 'reject' && refHasBare(input));
        expect(show(r.out), where).toBe(show(mode === 'normalize' ? refNormalize(input) : input));
      }
    }
  });
});

describe('empty chunks', () => {
  // A zero-length chunk carries no bytes, so it must not change what the guard remembers
  // about the previous chunk ending in CR.
  it('reject: an empty chunk between "CR" and other bytes does not hide the bare CR', () => {
    expect(run('reject', ['a\r', '', 'b']).refused).toBe(true);
  });

  it('reject: an empty last chunk does not hide a trailing lone CR', () => {
    expect(run('reject', ['a\r\n.\r', '']).refused).toBe(true);
  });

  it('normalize: an empty chunk between "CR" and other bytes does not let the bare CR through', () => {
    expect(show(run('normalize', ['a\r', '', 'b']).out)).toBe(show('a\r\nb'));
  });

  it('empty chunks elsewhere change nothing', () => {
    expect(run('reject', ['', 'a\r\n', '', 'b\r\n', '']).refused).toBe(false);
    expect(show(run('normalize', ['', 'a\n', '', 'b']).out)).toBe(show('a\r\nb'));
  });
});

describe('LineEndingGuard and NUL', () => {
  // Some servers end DATA at "<CRLF>NUL.<CRLF>": a second, forged message could follow.
  const smuggling = 'Subject: x\r\n\r\nhi\r\n\x00.\r\nMAIL FROM:<ceo@bank.example>\r\nRCPT TO:<v@example.com>\r\nDATA\r\nforged\r\n\x00.\r\n';
  for (const mode of ['reject', 'normalize'] as const) {
    it(`a NUL anywhere is refused in ${mode} mode, wherever the chunks split`, () => {
      for (let at = 0; at <= smuggling.length; at++) {
        const r = run(mode, [smuggling.slice(0, at), smuggling.slice(at)]);
        expect(r.refused, `split at ${at}`).toBe(true);
      }
      expect(run(mode, ['a\r\nb\x00c\r\n']).refused).toBe(true);
      expect(run(mode, ['a\r\nb\x01c\r\n']).refused).toBe(false);
    });
  }
});
