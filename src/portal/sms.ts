import { request, type Dispatcher } from 'undici';
import { invalidNumberRefusal } from './sms-refusals.js';

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
    /** Set when the provider refused the number itself for good (see sms-refusals.ts): bounce, do not retry. */
    readonly invalidNumber?: string | undefined,
  ) {
    super(message);
    this.name = 'SmsError';
  }
}

/** Enough for any provider's error JSON; a longer answer is not read further. */
const MAX_ERROR_BODY = 16 * 1024;

/** The numeric `code` of a Twilio-style error body (e.g. 21211), and nothing else of it. */
async function errorCode(body: Dispatcher.ResponseData['body']): Promise<number | undefined> {
  let text = '';
  for await (const chunk of body) {
    text += (chunk as Buffer).toString('utf8');
    if (text.length > MAX_ERROR_BODY) {
      body.destroy();
      return undefined;
    }
  }
  try {
    const code = Number((JSON.parse(text) as { code?: unknown }).code);
    return Number.isSafeInteger(code) ? code : undefined;
  } catch {
    return undefined;
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
    const invalid = invalidNumberRefusal(res.statusCode, await errorCode(res.body).catch(() => undefined));
    if (invalid) throw new SmsError(`SMS provider refused the number: ${invalid}, HTTP ${res.statusCode}`, res.statusCode, invalid);
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
