const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;

/**
 * SMTP smuggling guard. A bare LF or bare CR inside DATA lets a downstream MTA that
 * accepts "<LF>.<LF>" as end-of-data see a second, forged message. Postern either
 * refuses such messages or rewrites every bare CR/LF to CRLF so nothing downstream can
 * disagree about where the message ends. State carries across chunk boundaries.
 *
 * A NUL byte is refused in either mode: some servers take "<CRLF>NUL.<CRLF>" as the end
 * of data (SEC Consult's SMTP smuggling research), and without BINARYMIME, which Postern
 * does not offer, mail has no NUL in it (RFC 5321 §4.1.1.4: control characters SHOULD be
 * avoided). Dropping it instead would change the message silently.
 */
export class LineEndingGuard {
  /** The previous chunk ended in CR, so this chunk must start with LF. */
  private pendingCr = false;
  /**
   * (normalize) The previous chunk ended with a dot that began a line after a bare CR: a
   * dot right after it is the second of a stuffed pair, and goes.
   */
  private dotAfterBareCr = false;
  bareFound = false;
  nulFound = false;

  constructor(private readonly mode: 'reject' | 'normalize') {}

  /** The message must be refused: a NUL, or a bare CR/LF in reject mode. */
  get refused(): boolean {
    return this.nulFound || (this.mode === 'reject' && this.bareFound);
  }

  /** Returns the chunk to store (rewritten in normalize mode). */
  push(chunk: Buffer): Buffer {
    if (chunk.length === 0) return chunk; // nothing to judge, and a pending CR stays pending
    if (!this.nulFound && chunk.indexOf(0) !== -1) this.nulFound = true;
    const startsPending = this.pendingCr;
    this.pendingCr = chunk[chunk.length - 1] === CR;
    if (this.mode === 'reject') {
      if (!this.bareFound && hasBareEnding(chunk, startsPending)) this.bareFound = true;
      return chunk;
    }
    const dropDot = this.dotAfterBareCr && chunk[0] === DOT;
    this.dotAfterBareCr = false;
    // The fast path: a chunk with nothing to rewrite is stored as it came, not copied.
    if (!dropDot && !hasBareEnding(chunk, startsPending)) return chunk;
    return this.normalize(chunk, startsPending, dropDot);
  }

  /** Call at the end of DATA; a trailing lone CR is bare too. Returns bytes to append. */
  end(): Buffer {
    this.dotAfterBareCr = false;
    if (!this.pendingCr) return Buffer.alloc(0);
    this.pendingCr = false;
    this.bareFound = true;
    return this.mode === 'reject' ? Buffer.alloc(0) : Buffer.from('\n');
  }

  /**
   * Every bare CR or LF becomes CRLF, and the line after a bare CR is then read as any
   * line is: a leading ".." loses its escape dot (RFC 5321 §4.5.2), as smtp-server does
   * after CRLF and after a bare LF, whose "\n" it takes for a line end. Without this the
   * line after a bare CR alone kept its stuffing dot, a message differing by which bare
   * ending its client used.
   *
   * This runs on what smtp-server passes on, after it found the end of DATA (a strict
   * CRLF.CRLF): nothing here can end a message early or start another, and a "." line
   * that comes of it is content, which the next hop gets dot-stuffed.
   *
   * Line endings are found with native searches and the text between them copied whole,
   * into one buffer the size of the worst case (every byte a bare LF).
   */
  private normalize(chunk: Buffer, startsPending: boolean, dropDot: boolean): Buffer {
    const n = chunk.length;
    const out = Buffer.allocUnsafe(2 * n + 1);
    let o = 0;
    let i = 0;
    /** At the start of a line that follows a bare CR. */
    let afterBareCr = false;
    if (dropDot) {
      i = 1;
    } else if (startsPending) {
      // The CR that ended the last chunk was already stored: complete it with LF.
      out[o++] = LF;
      if (chunk[0] === LF) i = 1;
      else afterBareCr = this.bareFound = true;
    }
    let nextCr = chunk.indexOf(CR, i);
    let nextLf = chunk.indexOf(LF, i);
    while (i < n) {
      if (afterBareCr) {
        afterBareCr = false;
        if (chunk[i] === DOT) {
          out[o++] = DOT;
          i++;
          if (i === n) this.dotAfterBareCr = true;
          else if (chunk[i] === DOT) i++;
          continue;
        }
      }
      if (nextCr !== -1 && nextCr < i) nextCr = chunk.indexOf(CR, i);
      if (nextLf !== -1 && nextLf < i) nextLf = chunk.indexOf(LF, i);
      const at = nextCr === -1 ? nextLf : nextLf === -1 ? nextCr : Math.min(nextCr, nextLf);
      if (at === -1) {
        o += chunk.copy(out, o, i);
        break;
      }
      o += chunk.copy(out, o, i, at);
      out[o++] = CR;
      i = at + 1;
      // A LF found here has no CR before it: a CR's own LF is taken with the CR below.
      if (chunk[at] === LF) {
        out[o++] = LF;
        this.bareFound = true;
        continue;
      }
      if (i === n) break; // a CR at the very end: the next chunk (or end()) decides
      out[o++] = LF;
      if (chunk[i] === LF) i++;
      else afterBareCr = this.bareFound = true;
    }
    return out.subarray(0, o);
  }
}

/** True when the chunk holds a LF not preceded by CR, or a CR not followed by LF. */
function hasBareEnding(chunk: Buffer, startsAfterCr: boolean): boolean {
  for (let i = chunk.indexOf(LF); i !== -1; i = chunk.indexOf(LF, i + 1)) {
    const prevIsCr = i === 0 ? startsAfterCr : chunk[i - 1] === CR;
    if (!prevIsCr) return true;
  }
  if (startsAfterCr && chunk.length > 0 && chunk[0] !== LF) return true;
  for (let i = chunk.indexOf(CR); i !== -1; i = chunk.indexOf(CR, i + 1)) {
    if (i + 1 < chunk.length && chunk[i + 1] !== LF) return true;
  }
  return false;
}
