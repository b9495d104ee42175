/**
 * The decimal digits of every script (Unicode general category Nd), for reading a number
 * written in any of them as the ASCII number a reader takes it for: `٥٢٤-١٢-٣٤٥٦` and
 * `５２４-１２-３４５６` are the SSN 524-12-3456 to anyone who reads them.
 *
 * Unicode assigns Nd only in runs of ten, 0 to 9 in order (a stability policy), so a digit's
 * value is its distance from the zero it follows. The zeros are listed here (Unicode 17,
 * planes 0 and 1, where every Nd character is) rather than found with /\p{Nd}/u at start-up
 * (12 ms) or while scanning (a u-flag class over a long text costs some 15 ms per MB);
 * test/inspect/unicode-text.test.ts checks the list against the engine's data.
 */
export const DIGIT_ZEROS: readonly number[] = [
  0x660, 0x6f0, 0x7c0, 0x966, 0x9e6, 0xa66, 0xae6, 0xb66, 0xbe6, 0xc66, 0xce6, 0xd66, 0xde6, 0xe50, 0xed0, 0xf20,
  0x1040, 0x1090, 0x17e0, 0x1810, 0x1946, 0x19d0, 0x1a80, 0x1a90, 0x1b50, 0x1bb0, 0x1c40, 0x1c50, 0xa620, 0xa8d0,
  0xa900, 0xa9d0, 0xa9f0, 0xaa50, 0xabf0, 0xff10, 0x104a0, 0x10d30, 0x10d40, 0x11066, 0x110f0, 0x11136, 0x111d0,
  0x112f0, 0x11450, 0x114d0, 0x11650, 0x116c0, 0x116d0, 0x116da, 0x11730, 0x118e0, 0x11950, 0x11bf0, 0x11c50,
  0x11d50, 0x11da0, 0x11de0, 0x11f50, 0x16130, 0x16a60, 0x16ac0, 0x16b50, 0x16d70, 0x1ccf0, 0x1d7ce, 0x1d7d8,
  0x1d7e2, 0x1d7ec, 0x1d7f6, 0x1e140, 0x1e2f0, 0x1e4f0, 0x1e5f1, 0x1e950, 0x1fbf0,
];

/** The ASCII digit a non-ASCII decimal digit stands for, or undefined for any other code point. */
export function asciiDigit(codePoint: number): string | undefined {
  let lo = 0;
  let hi = DIGIT_ZEROS.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const zero = DIGIT_ZEROS[mid]!;
    if (codePoint < zero) hi = mid - 1;
    else if (codePoint > zero + 9) lo = mid + 1;
    else return String.fromCharCode(48 + codePoint - zero);
  }
  return undefined;
}
