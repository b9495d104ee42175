/**
 * Parsed keys and certificates by their text (armored key, PEM): the same few recipients
 * and escrow keys come back message after message, and parsing them each time cost more
 * than encrypting a typical message. Least recently used entries go first.
 */
export class ParsedCache<T> {
  private readonly entries = new Map<string, T>();

  constructor(private readonly max = 256) {}

  get(text: string, parse: (text: string) => T): T {
    let value = this.entries.get(text);
    if (value === undefined) {
      value = parse(text);
      if (this.entries.size >= this.max) this.entries.delete(this.entries.keys().next().value as string);
    } else this.entries.delete(text);
    this.entries.set(text, value);
    return value;
  }

  delete(text: string): void {
    this.entries.delete(text);
  }
}
