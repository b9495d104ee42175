/**
 * A bound on the bytes of messages held whole in memory at once by delivery attempts.
 *
 * Most mail is streamed from the spool to the next hop, but some steps need the whole
 * message: the portal (sealed as one piece), OpenPGP and S/MIME encryption, certificate
 * harvesting. With `delivery.concurrency` attempts at once (200 by default), that many
 * 25 MB messages going to the portal would hold gigabytes. An attempt takes its
 * message's size from this budget before it reads the message whole, and gives it back
 * when the attempt ends; others wait their turn, first come first served.
 *
 * A message larger than the whole budget is let in when nothing else is held, alone, so
 * it is delayed, never refused. Each attempt takes from the budget once (the whole body
 * is read once per attempt and shared by its steps), so no attempt ever waits while
 * holding a share: the budget cannot deadlock.
 */
export class MemoryBudget {
  private held = 0;
  private readonly waiting: { bytes: number; grant: () => void }[] = [];

  constructor(readonly limit: number) {}

  /** Bytes held by attempts now. */
  get heldBytes(): number {
    return this.held;
  }

  /** Attempts waiting for their share. */
  get waitingCount(): number {
    return this.waiting.length;
  }

  /** Whether a share of `bytes` would have to wait now. */
  mustWait(bytes: number): boolean {
    return this.waiting.length > 0 || !this.fits(bytes);
  }

  /**
   * Resolves, once `bytes` fit, with the function that gives them back (calling it more
   * than once gives them back once).
   */
  async take(bytes: number): Promise<() => void> {
    if (this.mustWait(bytes)) await new Promise<void>((grant) => this.waiting.push({ bytes, grant }));
    else this.held += bytes;
    let given = false;
    return () => {
      if (given) return;
      given = true;
      this.held -= bytes;
      this.grantWaiting();
    };
  }

  private fits(bytes: number): boolean {
    return this.held === 0 || this.held + bytes <= this.limit;
  }

  /** In arrival order: a large share waiting first is not overtaken by small ones for ever. */
  private grantWaiting(): void {
    for (let next = this.waiting[0]; next && this.fits(next.bytes); next = this.waiting[0]) {
      this.waiting.shift();
      this.held += next.bytes;
      next.grant();
    }
  }
}
