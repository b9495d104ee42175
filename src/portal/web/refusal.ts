/**
 * A request the portal turns away before doing its work (rate limits, busy hashing):
 * thrown from anywhere in a handler, answered by the app's error handler with this
 * status, an info page and Retry-After.
 */
export class Refusal extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly text: string,
    readonly retryAfterSeconds: number,
  ) {
    super(`portal: ${title}`);
  }
}
