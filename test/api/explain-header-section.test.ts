import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { explainMessage } from '../../src/policy/explain-message.js';
import type { TestGateway } from '../helpers/gateway.js';
import { scenario } from '../helpers/scenario.js';
import { adminConfig, call, KEYS, startAdmin } from './admin-helpers.js';

/**
 * policy explain with a subject given beside a message replaces the message's Subject
 * field, in its header section as the gateway's inspection splits it
 * (protect/header-end.ts). A message sent without the blank line after its headers has
 * body lines there: a "Subject:" line among them is body text, which the gateway's
 * detectors scan; explain removed it as if it were the Subject field, and answered
 * "nothing found" for a message the gateway protects. Over the admin API.
 */
const s = scenario();
let gw: TestGateway;
let admin: Awaited<ReturnType<typeof startAdmin>>;

beforeAll(async () => {
  gw = await s.gateway({ admin: await adminConfig(), delivery: { routes: { '*': { nexthop: '127.0.0.1:9', tls: 'none' } } } });
  admin = await startAdmin(gw);
});
afterAll(async () => {
  await admin?.close();
});

const MESSAGE = ['From: dr.jones@client.test', 'To: smith@dest.test', 'Subject: Referral', 'Dear Dr Smith,', 'Subject: SSN 524-12-3456 on file', 'Regards', ''].join('\r\n');

async function explain(json: Record<string, unknown>): Promise<{ subject: string; detectors: string[] }> {
  const r = await call(`${admin.url}/api/v1/policy/explain`, { method: 'POST', key: KEYS.ro, json: { from: 'dr.jones@client.test', to: ['smith@dest.test'], ...json } });
  expect(r.status).toBe(200);
  const body = r.body as { subject: string; detectors: { hits: { detector: string }[] } };
  return { subject: body.subject, detectors: body.detectors.hits.map((h) => h.detector) };
}

describe('policy explain, a subject given beside a message without the blank line after its headers', () => {
  it('replaces the header Subject only: a "Subject:" body line is still scanned, as the gateway scans it', async () => {
    expect(await explain({ message: MESSAGE })).toEqual({ subject: 'Referral', detectors: ['ssn'] });
    expect(await explain({ message: MESSAGE, subject: 'Lunch' })).toEqual({ subject: 'Lunch', detectors: ['ssn'] });
  });

  it('the message explained: the new Subject, the other header fields, then the body lines as they were', () => {
    expect(explainMessage({ from: 'x', to: ['y'], subject: 'Lunch', message: Buffer.from(MESSAGE) }).toString('latin1')).toBe(
      ['Subject: Lunch', 'From: dr.jones@client.test', 'To: smith@dest.test', 'Dear Dr Smith,', 'Subject: SSN 524-12-3456 on file', 'Regards', ''].join('\r\n'),
    );
  });
});
