import { isAscii } from 'node:buffer';

/**
 * Watches a body as the queue stores it, for Envelope.bodyBits: whether any byte is above
 * 0x7F. This runs on every chunk of every message before the 250, so it is one native
 * scan per chunk (node:buffer isAscii, SIMD), never a loop over bytes in JavaScript, and
 * nothing more once the first 8-bit byte is found.
 */
export class BodyBits {
  private eightBit = false;

  push(chunk: Buffer): void {
    if (!this.eightBit && !isAscii(chunk)) this.eightBit = true;
  }

  get value(): '7bit' | '8bit' {
    return this.eightBit ? '8bit' : '7bit';
  }
}
