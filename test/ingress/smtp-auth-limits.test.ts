import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { hashPassword } from '../../src/ingress/password-hash.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { RawSmtp } from '../helpers/smtp-client.js';

/**
 * Every password check the gateway makes goes through this counter (the real scrypt
 * check, held a moment when `holdMs` is set so checks made in parallel overlap for sure):
 * how many were made, against which hashes, and how many ran at once at most.
 */
const checks = vi.hoisted(() => ({ hashes: [] as string[], active: 0, peak: 0, holdMs: 0 }));
vi.mock('../../src/ingress/password-hash.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/ingress/password-hash.js')>();
  return {
    ...real,
    verifyPassword: async (password: string, encoded: string) => {
      checks.hashes.push(encoded);
      checks.peak = Math.max(checks.peak, ++checks.active);
      try {
        if (checks.holdMs) await new Promise((r) => setTimeout(r, checks.holdMs));
        return await real.verifyPassword(password, encoded);
      } finally {
        checks.active--;
      }
    },
  };
});

const PASSWORD = 'correct horse battery staple';
const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const plain = (authzid: string, authcid: string, password: string) => `AUTH PLAIN ${b64(`${authzid}\0${authcid}\0${password}`)}`;

let gw: TestGateway | undefined;
beforeEach(() => {
  Object.assign(checks, { hashes: [], active: 0, peak: 0, holdMs: 0 });
});
afterEach(async () => {
  await gw?.stop();
  gw = undefined;
});

/** A gateway where 127.0.0.1 may relay only after AUTH as alice. */
async function authGateway(auth: Record<string, unknown> = {}): Promise<TestGateway> {
  const passwordHash = await hashPassword(PASSWORD, { N: 1024, r: 8, p: 1 });
  gw = await startTestGateway({
    delivery: { routes: { '*': '127.0.0.1:9' } },
    smtp: { clients: [{ cidr: '10.0.0.0/8' }], auth: { users: [{ username: 'alice', passwordHash }], failureDelay: 0, ...auth } },
  });
  return gw;
}

async function tlsSession(port: number): Promise<RawSmtp> {
  const c = await RawSmtp.connect(port);
  await c.command('EHLO client.test');
  expect(await c.command('STARTTLS')).toMatch(/^220/);
  await c.startTls();
  expect(await c.command('EHLO client.test')).toMatch(/AUTH PLAIN LOGIN/);
  return c;
}

async function sessions(port: number, n: number): Promise<RawSmtp[]> {
  const all: RawSmtp[] = [];
  for (let i = 0; i < n; i++) all.push(await tlsSession(port));
  return all;
}

describe('SMTP AUTH: brute-force limits hold for attempts in parallel', () => {
  it('12 parallel guesses from one address get no more password checks than smtp.auth.maxFailures (3)', async () => {
    const g = await authGateway({ maxFailures: 3 });
    checks.holdMs = 100;
    const conns = await sessions(g.port, 12);
    const replies = await Promise.all(conns.map((c, i) => c.command(plain('', 'alice', `guess-${i}`))));
    expect(checks.hashes).toHaveLength(3);
    expect(replies.filter((r) => r.startsWith('535 5.7.8 '))).toHaveLength(3);
    expect(replies.filter((r) => r.startsWith('454 4.7.0 '))).toHaveLength(9);
    // Three failures lock the address: even the right password gets no check now.
    expect(await conns[0]!.command(plain('', 'alice', PASSWORD))).toMatch(/^454 4\.7\.0 /);
    expect(checks.hashes).toHaveLength(3);
    for (const c of conns) c.close();
  });

  it('password checks run at most two at a time in the process; beyond a short queue, 454 4.7.0 "try again later"', async () => {
    // maxFailures high: only the process-wide cap stands between the guesses and scrypt.
    const g = await authGateway({ maxFailures: 1000 });
    checks.holdMs = 100;
    const conns = await sessions(g.port, 12);
    const replies = await Promise.all(conns.map((c, i) => c.command(plain('', 'alice', `guess-${i}`))));
    expect(checks.peak).toBeLessThanOrEqual(2);
    const busy = replies.filter((r) => r.startsWith('454 4.7.0 '));
    expect(busy.length).toBeGreaterThan(0);
    expect(busy[0]).toMatch(/try again later/);
    expect(replies.filter((r) => r.startsWith('535 5.7.8 ')).length + busy.length).toBe(12);
    // Once they are answered, a right password gets its check and passes.
    expect(await conns[0]!.command(plain('', 'alice', PASSWORD))).toMatch(/^235 2\.7\.0 /);
    for (const c of conns) c.close();
  });
});

describe('SMTP AUTH: a refusal does not tell whether the name exists', () => {
  it('an unknown user costs a password check like a known one, against a hash of the same cost', async () => {
    const g = await authGateway();
    const c = await tlsSession(g.port);
    expect(await c.command(plain('', 'nosuchuser', 'wrong-password'))).toMatch(/^535 5\.7\.8 /);
    expect(checks.hashes).toHaveLength(1);
    expect(await c.command(plain('', 'alice', 'wrong-password'))).toMatch(/^535 5\.7\.8 /);
    expect(checks.hashes).toHaveLength(2);
    const cost = (h: string) => h.split('$').slice(0, 4).join('$');
    expect(cost(checks.hashes[0]!)).toBe(cost(checks.hashes[1]!));
    expect(checks.hashes[0]).not.toBe(checks.hashes[1]);
    c.close();
  });
});

describe('SMTP AUTH PLAIN identities (RFC 4616 §2)', () => {
  it('refuses an authorization identity other than the authentication identity, and an empty authentication identity', async () => {
    const g = await authGateway();
    const c = await tlsSession(g.port);
    // alice's password may not act as bob.
    expect(await c.command(plain('bob', 'alice', PASSWORD))).toMatch(/^535 5\.7\.8 /);
    // The name in the authzid field with an empty authcid is not alice logging in.
    expect(await c.command(plain('alice', '', PASSWORD))).toMatch(/^535 5\.7\.8 /);
    expect(gw!.events('smtp.auth').map((l) => [l.ok, l.reason])).toEqual([
      [false, 'authzid-differs'],
      [false, 'empty-authcid'],
    ]);
    // Acting as oneself is allowed.
    expect(await c.command(plain('alice', 'alice', PASSWORD))).toMatch(/^235 2\.7\.0 /);
    c.close();
  });
});

describe('SMTP AUTH logging', () => {
  it('a failed AUTH logs and audits an unknown username only as "(unknown)" and its length: it may be the password', async () => {
    const g = await authGateway();
    const c = await tlsSession(g.port);
    const marker = 'PASSWORD-IN-USERNAME-7f3a';
    expect(await c.command(plain('', marker, 'x'))).toMatch(/^535 5\.7\.8 /);
    expect(await c.command(plain('', 'alice', 'wrong'))).toMatch(/^535 5\.7\.8 /);
    c.close();
    expect(g.events('smtp.auth').map((l) => [l.username, l.usernameLength])).toEqual([
      ['(unknown)', marker.length],
      ['alice', undefined],
    ]);
    expect(JSON.stringify(g.logs)).not.toContain(marker);
    await g.gateway.flushEvents();
    const dir = join(g.dataDir, 'audit', '0');
    const audit = readdirSync(dir).map((f) => readFileSync(join(dir, f), 'utf8')).join('\n');
    expect(audit).toContain('"smtp.auth"');
    expect(audit).not.toContain(marker);
  });
});

describe('SMTP AUTH exchange replies (RFC 4954 §4)', () => {
  it('a client cancelling with "*" gets 501 5.7.0, an undecodable response 501 5.5.2', async () => {
    const g = await authGateway();
    const c = await tlsSession(g.port);
    expect(await c.command('AUTH PLAIN')).toMatch(/^334/);
    expect(await c.command('*')).toMatch(/^501 5\.7\.0 /);
    expect(await c.command('AUTH LOGIN')).toMatch(/^334/);
    expect(await c.command(b64('alice'))).toMatch(/^334/);
    expect(await c.command('*')).toMatch(/^501 5\.7\.0 /);
    expect(await c.command('AUTH PLAIN !!!!not-base64')).toMatch(/^501 5\.5\.2 /);
    c.close();
  });
});
