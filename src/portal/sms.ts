import { request } from 'undici';

export interface SmsProvider {
  url: string;
  accountSid: string;
  authToken: string;
  from: string;
}

/**
 * A failed send. The message is a fixed text with the HTTP status (or the network error
 * code) and never the provider's answer: a provider that echoes the request would put the
 * link, whose token opens the portal, into logs and delivery reports.
 */
export class SmsError extends Error {
  constructor(
    message: string,
    readonly status?: number | undefined,
  ) {
    super(message);
    this.name = 'SmsError';
  }
}

/** What a message id from the provider may look like; anything else is not repeated. */
const SID = /^[A-Za-z0-9_-]{1,64}$/;

/** Sends one SMS through a Twilio-style REST API; resolves with the provider's message id. */
export async function sendSms(provider: SmsProvider, to: string, body: string): Promise<string> {
  let res;
  try {
    res = await request(`${provider.url.replace(/\/$/, '')}/Accounts/${encodeURIComponent(provider.accountSid)}/Messages.json`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${provider.accountSid}:${provider.authToken}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ To: to, From: provider.from, Body: body }).toString(),
      headersTimeout: 10_000,
      bodyTimeout: 10_000,
    });
  } catch (err) {
    throw new SmsError(`SMS provider not reached (${(err as NodeJS.ErrnoException).code ?? (err as Error).name})`);
  }
  if (res.statusCode < 200 || res.statusCode >= 300) {
    await res.body.dump().catch(() => undefined);
    throw new SmsError(`SMS provider refused the message: HTTP ${res.statusCode}`, res.statusCode);
  }
  const text = await res.body.text().catch(() => '');
  try {
    const sid = (JSON.parse(text) as { sid?: unknown }).sid;
    return typeof sid === 'string' && SID.test(sid) ? sid : 'accepted';
  } catch {
    return 'accepted';
  }
}
