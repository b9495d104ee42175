import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openJournal } from '../../src/archive/journal.js';
import { decisions, envelope, message, silent } from '../archive/helpers.js';
import type { TestGateway } from '../helpers/gateway.js';
import { scenario } from '../helpers/scenario.js';
import { adminConfig, call, KEYS, startAdmin } from './admin-helpers.js';

/**
 * What the archive routes of the admin API accept, over HTTP: a misspelt or empty filter,
 * a loose date, a custodian that is no address are refused (400 naming the parameter)
 * rather than widening an export or narrowing a hold to nothing; message content (a
 * keyword) is for the admin role only.
 */

const s = scenario();
let gw: TestGateway;
let admin: Awaited<ReturnType<typeof startAdmin>>;
const api = (path: string) => `${admin.url}/api/v1${path}`;
const message400 = (r: { status: number; body: unknown }) => {
  expect(r.status).toBe(400);
  return (r.body as { message: string }).message;
};

beforeAll(async () => {
  gw = await s.gateway({ admin: await adminConfig() });
  admin = await startAdmin(gw);
  // A chain of its own: the gateway may journal into journal-0 meanwhile.
  const journal = await openJournal(gw.config, gw.dataDir, silent, { shard: 77 });
  for (const [to, body] of [['patient@example.net', 'HIV test positive'], ['other.patient@example.org', 'Psychiatric notes']] as const) {
    const e = envelope({ from: 'dr.smith@hospital.test', to: [to] });
    await journal!.record({ envelope: e, decisions: decisions(e), body: message('Lab results', body) });
  }
  await journal!.close();
});
afterAll(async () => {
  await admin?.close();
});

describe('archive search and export: unknown or empty parameters', () => {
  it('a misspelt filter is refused with 400 naming it, not ignored (the export would hold every patient)', async () => {
    const ok = await call(api('/archive/export?format=mbox&participant=patient@example.net'), { key: KEYS.adm });
    expect([ok.status, ok.headers.get('x-postern-count')]).toEqual([200, '1']);

    const typo = await call(api('/archive/export?format=mbox&partcipant=patient@example.net'), { key: KEYS.adm });
    expect(message400(typo)).toBe('unknown query parameter partcipant');
    expect(typo.text).not.toContain('Psychiatric');
    expect(message400(await call(api('/archive/export?format=mbox&participant=patient@example.net&sinse=2026-12-01'), { key: KEYS.adm }))).toBe('unknown query parameter sinse');
    expect(message400(await call(api('/archive/search?Participant=patient@example.net'), { key: KEYS.ro }))).toBe('unknown query parameter Participant');
    expect(message400(await call(api('/archive/holds?active=true'), { key: KEYS.ro }))).toBe('unknown query parameter active');
  });

  it('an empty filter is refused, not dropped', async () => {
    const blank = await call(api('/archive/export?format=mbox&participant='), { key: KEYS.adm });
    expect(message400(blank)).toMatch(/^participant /);
    expect(blank.text).not.toContain('Psychiatric');
    expect(message400(await call(api('/archive/search?subject='), { key: KEYS.ro }))).toMatch(/^subject /);
  });
});

describe('archive dates over the API', () => {
  it('accepts a bare date or a date-time with Z or an offset; refuses the rest naming the parameter', async () => {
    expect((await call(api('/archive/search?since=2026-01-01&until=2126-06-30'), { key: KEYS.ro })).status).toBe(200);
    expect((await call(api(`/archive/search?until=${encodeURIComponent('2126-06-30T12:00:00+02:00')}`), { key: KEYS.ro })).status).toBe(200);
    for (const [name, value] of [['until', '2026-6-30'], ['until', '2026-06-30T23:59:59'], ['since', '2026-02-31'], ['since', '1'], ['since', 'Tuesday 2026']]) {
      const r = await call(api(`/archive/search?${name}=${encodeURIComponent(value as string)}`), { key: KEYS.ro });
      expect(message400(r), `${name}=${value}`).toMatch(new RegExp(`^${name}: "`));
    }
    expect(message400(await call(api('/archive/search?since=2026-07-01&until=2026-06-30'), { key: KEYS.ro }))).toBe('since (2026-07-01T00:00:00.000Z) is after until (2026-06-30T23:59:59.999Z)');
  });
});

describe('legal holds over the API', () => {
  it('refuses a custodian that is not an address, and an inverted date range (400 naming the field); matches a pattern as search does', async () => {
    for (const custodian of ['Patient <patient@example.net>', '', '*']) {
      const r = await call(api('/archive/holds'), { method: 'POST', key: KEYS.adm, json: { reason: 'case 18', custodian } });
      expect(message400(r), custodian).toMatch(/^custodian: /);
    }
    const inverted = await call(api('/archive/holds'), { method: 'POST', key: KEYS.adm, json: { reason: 'case 19', custodian: 'patient@example.net', since: '2026-07-01', until: '2026-06-01' } });
    expect(message400(inverted)).toMatch(/^since \(2026-07-01T00:00:00\.000Z\) is after until/);
    expect(((await call(api('/archive/holds'), { key: KEYS.adm })).body as { holds: unknown[] }).holds).toEqual([]);

    const pattern = await call(api('/archive/holds'), { method: 'POST', key: KEYS.adm, json: { reason: 'case 17', custodian: '*@example.net' } });
    expect(pattern.status).toBe(200);
  });
});

describe('message content is for the admin role', () => {
  it('a keyword search needs admin: read-only and operator get 403, and cannot tell a hit from a miss', async () => {
    for (const key of [KEYS.ro, KEYS.op]) {
      const hit = await call(api('/archive/search?keyword=HIV'), { key });
      const miss = await call(api('/archive/search?keyword=diabetes'), { key });
      expect([hit.status, miss.status]).toEqual([403, 403]);
      expect(hit.body).toEqual(miss.body);
      expect((hit.body as { message: string }).message).toMatch(/needs admin/);
    }
    const byAdmin = await call(api('/archive/search?keyword=HIV'), { key: KEYS.adm });
    expect(byAdmin.status).toBe(200);
    expect((byAdmin.body as { hits: { rcptTo: string[] }[] }).hits.map((h) => h.rcptTo)).toEqual([['patient@example.net']]);
    // Without a keyword, read-only still searches the metadata.
    expect((await call(api('/archive/search?participant=*@example.org'), { key: KEYS.ro })).status).toBe(200);
  });

  it("GET /archive/holds shows a hold's keyword to admin only; others see that there is one", async () => {
    const placed = await call(api('/archive/holds'), { method: 'POST', key: KEYS.adm, json: { reason: 'case 20', keyword: 'psychiatric' } });
    expect(placed.status).toBe(200);
    const holdId = (placed.body as { holdId: string }).holdId;
    for (const key of [KEYS.ro, KEYS.op]) {
      const r = await call(api('/archive/holds'), { key });
      expect(r.status).toBe(200);
      expect(r.text).not.toContain('psychiatric');
      const hold = (r.body as { holds: Record<string, unknown>[] }).holds.find((h) => h.id === holdId);
      expect(hold).toMatchObject({ id: holdId, keywordGiven: true, reason: 'case 20' });
      expect(hold).not.toHaveProperty('keyword');
    }
    const byAdmin = (await call(api('/archive/holds'), { key: KEYS.adm })).body as { holds: Record<string, unknown>[] };
    expect(byAdmin.holds.find((h) => h.id === holdId)).toMatchObject({ id: holdId, keyword: 'psychiatric' });
  });
});
