import { randomFillSync } from 'node:crypto';

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'; // Crockford base32: no I, L, O, U

/** Random bytes are drawn from the system 4 KB at a time, not one call per id. */
const pool = Buffer.alloc(4096);
let poolOffset = pool.length;

/**
 * Queue ids sort by arrival time (10 chars of milliseconds) and end in 8 random
 * characters (40 bits), so several instances never collide. Safe as a file name.
 */
export function newQueueId(now = Date.now()): string {
  let time = '';
  let t = now;
  for (let i = 0; i < 10; i++) {
    time = ALPHABET[t % 32] + time;
    t = Math.floor(t / 32);
  }
  if (poolOffset + 5 > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  let rand = '';
  // 5 bytes = 40 bits = 8 characters of 5 bits.
  let bits = 0;
  let value = 0;
  for (let i = 0; i < 5; i++) {
    value = (value << 8) | (pool[poolOffset++] as number);
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      rand += ALPHABET[(value >> bits) & 31];
    }
    value &= (1 << bits) - 1;
  }
  return time + rand;
}

export function isQueueId(text: string): boolean {
  return /^[0-9A-HJKMNP-TV-Z]{18}$/.test(text);
}
