import { generateKey } from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openJournal } from '../../src/archive/journal.js';
import { auditRecords } from '../../src/events/audit-read.js';
import { loadMasterKeys } from '../../src/portal/keys.js';
import { openPortalStore } from '../../src/portal/open-store.js';
import { decisions, envelope, message, silent } from '../archive/helpers.js';
import { buildCert } from '../keys/smime-pki.js';
import type { TestGateway } from '../helpers/gateway.js';
import { scenario } from '../helpers/scenario.js';
import { sendMail, testMessage } from '../helpers/smtp-client.js';
import { adminConfig, call, KEYS, startAdmin, until } from './admin-helpers.js';

const s = scenario();
let gw: TestGateway;
let admin: Awaited<ReturnType<typeof startAdmin>>;
const api = (path: string) => `${admin.url}/api/v1${path}`;

beforeAll(async () => {
  gw = await s.gateway({ admin: await adminConfig(), delivery: { routes: { '*': { nexthop: '127.0.0.1:9', tls: 'none' } }, retry: { initialDelay: '1h' } } });
  admin = await startAdmin(gw);
});
afterAll(async () => {
  await admin?.close();
});
const audit = { flush: () => gw.gateway.flushEvents() };

describe('policy explain', () => {
  it("gives each recipient's decision, the rule and the policy file, and inspects a message when given", async () => {
    const r = await call(api('/policy/explain'), { method: 'POST', key: KEYS.ro, json: { from: 'dr@client.test', to: ['a@dest.test', 'b@other.test'], message: testMessage({ subject: 'Lab results' }).toString() } });
    expect(r.status).toBe(200);
    const body = r.body as { policyFile: string; subject: string; decisions: { rcpt: string; ruleId: string; candidates: string[]; method: string }[] };
    expect(body.policyFile).toMatch(/test\/fixtures\/policy-relay\.yaml$/);
    expect(body.subject).toBe('Lab results');
    expect(body.decisions.map((d) => [d.rcpt, d.ruleId, d.candidates, d.method])).toEqual([
      ['a@dest.test', 'default', ['tls'], 'tls'],
      ['b@other.test', 'default', ['tls'], 'tls'],
    ]);
    expect((await call(api('/policy/explain'), { method: 'POST', key: KEYS.ro, json: { from: 'a@b.test', to: ['c@d.test'], bogus: 1 } })).status).toBe(400);
  });

  it('scans the subject as the gateway does, alone or replacing the message subject', async () => {
    const explain = async (json: Record<string, unknown>) => {
      const r = await call(api('/policy/explain'), { method: 'POST', key: KEYS.ro, json: { from: 'dr@client.test', to: ['a@dest.test'], ...json } });
      expect(r.status).toBe(200);
      const body = r.body as { subject: string; detectors: { hits: { detector: string }[] }; decisions: unknown[] };
      expect(JSON.stringify([body.detectors, body.decisions])).not.toContain('3456'); // names and counts, never the number
      return body;
    };
    expect((await explain({ subject: 'SSN 524-12-3456' })).detectors.hits.map((h) => h.detector)).toEqual(['ssn']);
    const message = testMessage({ subject: 'Lab results' }).toString();
    expect((await explain({ message, subject: 'SSN 524-12-3456' })).detectors.hits.map((h) => h.detector)).toEqual(['ssn']);
    const replaced = await explain({ message: testMessage({ subject: 'SSN 524-12-3456' }).toString(), subject: 'Lunch' });
    expect([replaced.subject, replaced.detectors.hits]).toEqual(['Lunch', []]);
  });

  it('takes a size for size rules, and refuses one that is not a number of bytes', async () => {
    const r = await call(api('/policy/explain'), { method: 'POST', key: KEYS.ro, json: { from: 'dr@client.test', to: ['a@dest.test'], size: 31_457_280 } });
    expect(r.status).toBe(200);
    expect((r.body as { size: number }).size).toBe(31_457_280);
    expect((await call(api('/policy/explain'), { method: 'POST', key: KEYS.ro, json: { from: 'dr@client.test', to: ['a@dest.test'], size: '30MB' } })).status).toBe(400);
  });

  it('decides as the gateway does: a Secure Text number is not sent by TLS', async () => {
    const r = await call(api('/policy/explain'), { method: 'POST', key: KEYS.ro, json: { from: 'dr@client.test', to: ['15551234567@secure.text'] } });
    expect(r.status).toBe(200);
    const [d] = (r.body as { decisions: { method?: string; reasons: string[] }[] }).decisions;
    expect(d?.method).not.toBe('tls');
  });
});

describe('portal revoke', () => {
  it('withdraws a portal message once, records who, and says so when asked again', async () => {
    const store = await openPortalStore(gw.config, gw.dataDir, (await loadMasterKeys(gw.config, gw.dataDir)).keys);
    const m = await store.putMessage(Buffer.from('Subject: x\r\n\r\nsecret\r\n'), { createdAt: Date.now(), expiresAt: Date.now() + 86_400_000, sender: 'dr@client.test', recipients: ['pat@dest.test'], queueId: '01TESTQUEUEID00000', kind: 'received' });
    expect((await call(api(`/portal/${m.id}/revoke`), { method: 'POST', key: KEYS.ro })).status).toBe(403);
    const r = await call(api(`/portal/${m.id}/revoke`), { method: 'POST', key: KEYS.op });
    expect(r).toMatchObject({ status: 200, body: { portalId: m.id, queueId: '01TESTQUEUEID00000', recipients: 1, by: 'ops', already: false } });
    expect((await store.get(m.id))?.revoked).toMatchObject({ by: 'ops' });
    expect(await call(api(`/portal/${m.id}/revoke`), { method: 'POST', key: KEYS.adm })).toMatchObject({ status: 200, body: { by: 'ops', already: true } });
    expect(gw.logs.filter((l) => l.event === 'portal.revoked')).toEqual([expect.objectContaining({ portalId: m.id, by: 'ops' })]);
    expect((await call(api('/portal/AAAAAAAAAAAAAAAA/revoke'), { method: 'POST', key: KEYS.op })).status).toBe(404);
    await store.close();
  });
});

describe('keys', () => {
  it('imports a key (refusing one that does not name the address), lists it without material, removes it', async () => {
    const { publicKey } = await generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ email: 'pat@dest.test' }], format: 'armored' });
    const wrong = await call(api('/keys'), { method: 'POST', key: KEYS.op, json: { material: publicKey, address: 'other@dest.test' } });
    expect(wrong.status).toBe(200);
    expect((wrong.body as { results: { stored: boolean; refused: string }[] }).results[0]).toMatchObject({ stored: false, refused: expect.stringMatching(/does not name other@dest\.test/) });
    const ok = await call(api('/keys'), { method: 'POST', key: KEYS.op, json: { material: publicKey } });
    const [stored] = (ok.body as { results: { id: string; stored: boolean; addresses: string[] }[] }).results;
    expect(stored).toMatchObject({ stored: true, addresses: ['pat@dest.test'], id: expect.stringMatching(/^pgp:[0-9A-F]{40}$/) });
    const list = await call(api('/keys'), { key: KEYS.ro });
    expect(list.body).toEqual([expect.objectContaining({ id: stored?.id, kind: 'pgp', addresses: ['pat@dest.test'], source: 'import' })]);
    expect(list.text).not.toContain('BEGIN PGP');
    expect((await call(api('/keys'), { method: 'POST', key: KEYS.op, json: { material: 'no key here' } })).status).toBe(400);
    // An EC S/MIME certificate is refused with the reason, not a 500.
    const ec = await call(api('/keys'), { method: 'POST', key: KEYS.op, json: { material: buildCert({ name: 'pat@dest.test', email: 'pat@dest.test', keyType: 'ec' }).cert } });
    expect(ec).toMatchObject({ status: 200, body: { results: [{ kind: 'smime', stored: false, refused: expect.stringMatching(/^not an RSA certificate/) }] } });
    // So is an OpenPGP block that cannot be read (it was a 500: "Unexpected end of packet").
    const broken = await call(api('/keys'), { method: 'POST', key: KEYS.op, json: { material: '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nxjMEZabc\n-----END PGP PUBLIC KEY BLOCK-----\n' } });
    expect(broken).toMatchObject({ status: 200, body: { results: [{ kind: 'pgp', stored: false, refused: expect.stringMatching(/^cannot be read as an OpenPGP key \(/) }] } });
    expect((await call(api(`/keys/${stored?.id}`), { method: 'DELETE', key: KEYS.ro })).status).toBe(403);
    expect(await call(api(`/keys/${stored?.id}`), { method: 'DELETE', key: KEYS.op })).toMatchObject({ status: 200, body: { removed: stored?.id } });
    expect((await call(api('/keys'), { key: KEYS.ro })).body).toEqual([]);
    expect((await call(api(`/keys/${stored?.id}`), { method: 'DELETE', key: KEYS.op })).status).toBe(404);
    expect(gw.logs.filter((l) => l.event === 'keys.imported' || l.event === 'keys.removed').map((l) => [l.event, l.actor])).toEqual([
      ['keys.imported', 'ops'],
      ['keys.removed', 'ops'],
    ]);
  });
});

describe('archive', () => {
  it('searches, exports (admin only) and places and releases holds', async () => {
    // A chain of its own (shard 99): the gateway may journal into journal-0 meanwhile.
    const journal = await openJournal(gw.config, gw.dataDir, silent, { shard: 99 });
    const e = envelope({ from: 'dr@client.test', to: ['pat@dest.test'] });
    await journal!.record({ envelope: e, decisions: decisions(e), body: message('Biopsy report', 'The results are in.') });
    await journal!.close();

    const found = await call(api('/archive/search?subject=biopsy'), { key: KEYS.ro });
    expect(found.status).toBe(200);
    expect((found.body as { hits: { id: string; subject: string }[] }).hits).toEqual([expect.objectContaining({ id: e.id, subject: 'Biopsy report' })]);
    expect(((await call(api('/archive/search?subject=nothing-like-this'), { key: KEYS.ro })).body as { hits: unknown[] }).hits).toEqual([]);
    expect((await call(api('/archive/search?since=yesterday'), { key: KEYS.ro })).status).toBe(400);

    const mbox = await call(api('/archive/export?format=mbox&participant=pat@dest.test'), { key: KEYS.adm });
    expect(mbox.status).toBe(200);
    expect(mbox.headers.get('content-type')).toBe('application/mbox');
    expect(mbox.headers.get('x-postern-count')).toBe('1');
    expect(mbox.text).toMatch(/^From dr@client\.test /);
    expect(mbox.text).toContain('The results are in.');

    expect((await call(api('/archive/holds'), { method: 'POST', key: KEYS.op, json: { reason: 'x', custodian: 'pat@dest.test' } })).status).toBe(403);
    expect((await call(api('/archive/holds'), { method: 'POST', key: KEYS.adm, json: { reason: 'no criteria' } })).status).toBe(400);
    const hold = await call(api('/archive/holds'), { method: 'POST', key: KEYS.adm, json: { reason: 'litigation 2026-17', custodian: 'pat@dest.test' } });
    expect(hold).toMatchObject({ status: 200, body: { holdId: expect.stringMatching(/^hold-/), actor: 'boss', reason: 'litigation 2026-17' } });
    const holdId = (hold.body as { holdId: string }).holdId;
    expect((await call(api('/archive/holds'), { key: KEYS.ro })).body).toEqual({ holds: [expect.objectContaining({ id: holdId, custodian: 'pat@dest.test', actor: 'boss' })] });
    expect(await call(api(`/archive/holds/${holdId}/release`), { method: 'POST', key: KEYS.adm, json: { reason: 'settled' } })).toMatchObject({ status: 200, body: { holdId, actor: 'boss' } });
    expect((await call(api(`/archive/holds/${holdId}/release`), { method: 'POST', key: KEYS.adm, json: { reason: 'again' } })).status).toBe(400);
    // The hold code logs its changes, so holds placed through the API are in the audit trail.
    await audit.flush();
    const records = [];
    for await (const r of auditRecords(gw.dataDir)) if (r.shard === '0' && r.fields.holdId === holdId) records.push({ event: r.event, fields: r.fields });
    expect(records).toEqual([
      { event: 'archive.hold-added', fields: expect.objectContaining({ holdId, custodian: 'pat@dest.test', reason: 'litigation 2026-17', actor: 'boss' }) },
      { event: 'archive.hold-released', fields: expect.objectContaining({ holdId, reason: 'settled', actor: 'boss' }) },
    ]);
  });
});

describe('audit trail and trace through the API', () => {
  it('API calls land in the audit trail; trace finds a deleted message; verify checks the chain', async () => {
    const r = await sendMail(gw.port, { from: 'sender@client.test', to: ['gone@dest.test'], raw: testMessage() });
    await gw.waitForLog((l) => l.event === 'delivery.deferred' && l.queueId === r.queueId);
    // The worker may still hold the message while it saves the deferral: 409 means "again in a moment".
    let del = await call(api(`/queue/${r.queueId}?reason=audit%20test`), { method: 'DELETE', key: KEYS.op });
    for (let i = 0; del.status === 409 && i < 50; i++) {
      await new Promise((res) => setTimeout(res, 20));
      del = await call(api(`/queue/${r.queueId}?reason=audit%20test`), { method: 'DELETE', key: KEYS.op });
    }
    expect(del.status).toBe(200);
    await audit.flush();

    const t = await call(api(`/trace?q=${r.queueId}&since=1h`), { key: KEYS.ro });
    expect(t.status).toBe(200);
    const [report] = (t.body as { messages: { queueId: string; events: { event: string; fields: Record<string, unknown> }[] }[] }).messages;
    expect(report?.queueId).toBe(r.queueId);
    // The admin listener's own line (queue.deleted comes from the gateway's logger, audited there).
    expect(report?.events.find((e) => e.event === 'api.call' && e.fields.status === 200)?.fields).toMatchObject({ actor: 'ops', role: 'operator', method: 'DELETE', route: '/api/v1/queue/:id' });
    expect((await call(api('/trace?q=x&since=not-a-time'), { key: KEYS.ro })).status).toBe(400);

    // api.call is logged once the reply is out: let the last ones land, then write the trail.
    await until(() => gw.logs.filter((l) => l.event === 'api.call' && l.route === '/api/v1/trace').length === 2, 2000, 'trace calls logged');
    await audit.flush();
    const v = await call(api('/audit/verify'), { key: KEYS.ro });
    expect(v).toMatchObject({ status: 200, body: { ok: true } });
    // Every API call of this file before verify is exactly one record on disk, with the
    // fields of its log line (test/api/audit-calls.test.ts does the same for `postern start`).
    const logged = gw.logs.filter((l) => l.event === 'api.call' && l.route !== '/api/v1/audit/verify');
    const onDisk = [];
    for await (const r of auditRecords(gw.dataDir)) if (r.event === 'api.call' && r.fields.route !== '/api/v1/audit/verify') onDisk.push(r.fields);
    expect(logged.length).toBeGreaterThan(20);
    const key = (f: Record<string, unknown>) => [f.method, f.path, f.status, f.actor, f.ip].join(' ');
    expect(onDisk.map(key).sort()).toEqual(logged.map(key).sort());
  });
});
