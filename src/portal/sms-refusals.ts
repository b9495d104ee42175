/**
 * The SMS provider's refusals that are final for the recipient's number (Twilio error
 * codes, given with HTTP 400 in the body's `code`): retrying for days would change
 * nothing, so the sender gets a 5.1.3 report at once. Everything else the provider
 * refuses (another 400, 401/403: our credentials or sender number, 429, 5xx) may be
 * fixed by the operator or by waiting, and is deferred. The text is ours: the provider's
 * own message may echo the request, and with it the link.
 */
const INVALID_NUMBER: ReadonlyMap<number, string> = new Map([
  [21211, 'not a valid phone number'],
  [21217, 'not a valid phone number'],
  [21614, 'not a mobile number that can receive SMS'],
]);

/** Why the provider refused the number for good, or undefined when the refusal may pass. */
export function invalidNumberRefusal(status: number, code: number | undefined): string | undefined {
  const why = status === 400 && code !== undefined ? INVALID_NUMBER.get(code) : undefined;
  return why && `${why} (provider error ${code})`;
}
