import { request } from 'undici';

export interface SmsProvider {
  url: string;
  accountSid: string;
  authToken: string;
  from: string;
}

/** Sends one SMS through a Twilio-style REST API. Throws with the provider's answer. */
export async function sendSms(provider: SmsProvider, to: string, body: string): Promise<string> {
  const res = await request(`${provider.url.replace(/\/$/, '')}/Accounts/${encodeURIComponent(provider.accountSid)}/Messages.json`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${provider.accountSid}:${provider.authToken}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ To: to, From: provider.from, Body: body }).toString(),
    headersTimeout: 10_000,
    bodyTimeout: 10_000,
  });
  const text = await res.body.text();
  if (res.statusCode < 200 || res.statusCode >= 300) throw new Error(`SMS provider answered ${res.statusCode}: ${text.slice(0, 200)}`);
  try {
    return String((JSON.parse(text) as { sid?: string }).sid ?? 'accepted');
  } catch {
    return 'accepted';
  }
}
