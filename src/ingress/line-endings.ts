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
    if (this.mode === 'reject') {
      if (!this.bareFound && hasBareEnding(chunk, this.pendingCr)) this.bareFound = true;
      this.pendingCr = chunk.length > 0 && chunk[chunk.length - 1] === 0x0d;
      return chunk;
    }
    const startsPending = this.pendingCr;
    this.pendingCr = chunk.length > 0 && chunk[chunk.length - 1] === 0x0d;
    if (!hasBareEnding(chunk, startsPending) && !this.pendingCr) return chunk;
    return this.normalize(chunk, startsPending);
  }

  /** Call at the end of DATA; a trailing lone CR is bare too. Returns bytes to append. */
  end(): Buffer {
    if (!this.pendingCr) return Buffer.alloc(0);
    this.pendingCr = false;
    if (this.mode === 'reject') {
      this.bareFound = true;
      return Buffer.alloc(0);
    }
    this.bareFound = true;
    return Buffer.from('\n');
  }

  private normalize(chunk: Buffer, startsPending: boolean): Buffer {
    const out: number[] = [];
    let i = 0;
    if (startsPending) {
      // The CR that ended the last chunk was already emitted; complete it with LF.
      if (chunk[0] !== 0x0a) {
        out.push(0x0a);
        this.bareFound = true;
      }
    }
    for (; i < chunk.length; i++) {
      const b = chunk[i] as number;
      if (b === 0x0d) {
        out.push(0x0d);
        if (i + 1 < chunk.length) {
          if (chunk[i + 1] === 0x0a) {
            out.push(0x0a);
            i++;
          } else {
            out.push(0x0a);
            this.bareFound = true;
          }
        }
        // A CR at the very end waits for the next chunk (pendingCr).
      } else if (b === 0x0a) {
        if (i === 0 && startsPending) {
          out.push(0x0a);
        } else {
          out.push(0x0d, 0x0a);
          this.bareFound = true;
        }
      } else {
        out.push(b);
      }
    }
    return Buffer.from(out);
  }
}

/** True when the chunk holds a LF not preceded by CR, or a CR not followed by LF. */
function hasBareEnding(chunk: Buffer, startsAfterCr: boolean): boolean {
  for (let i = chunk.indexOf(0x0a); i !== -1; i = chunk.indexOf(0x0a, i + 1)) {
    const prevIsCr = i === 0 ? startsAfterCr : chunk[i - 1] === 0x0d;
    if (!prevIsCr) return true;
  }
  if (startsAfterCr && chunk.length > 0 && chunk[0] !== 0x0a) return true;
  for (let i = chunk.indexOf(0x0d); i !== -1; i = chunk.indexOf(0x0d, i + 1)) {
    if (i + 1 < chunk.length && chunk[i + 1] !== 0x0a) return true;
  }
  return false;
}
