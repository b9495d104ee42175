/**
 * Whether `context` occurs within `reach` characters of a match (the match itself
 * included). The window is cut out and tested on its own, so a context word cut by the
 * window's edge still counts: that is how the detectors have always read "near".
 */
export function near(text: string, index: number, length: number, context: RegExp, reach: number): boolean {
  return context.test(text.slice(Math.max(0, index - reach), index + length + reach));
}
