import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { generateDkimKey, type DkimAlgorithm } from '../../src/sign/keygen.js';
import { findProgram } from './programs.js';

export interface TestDkimKey {
  domain: string;
  selector: string;
  algorithm: DkimAlgorithm;
  privateKey: string;
  txt: string;
}

export function makeDkimKey(domain: string, selector: string, algorithm: DkimAlgorithm = 'rsa-sha256'): TestDkimKey {
  return { domain, selector, algorithm, ...generateDkimKey(algorithm) };
}

/** The dkim.keys config entries for these keys. */
export function dkimConfig(keys: TestDkimKey[]): Record<string, unknown> {
  return { keys: keys.map((k) => ({ domain: k.domain, selector: k.selector, algorithm: k.algorithm, privateKey: k.privateKey })) };
}

/** mailauth's verifier, with DNS answered from the test keys' TXT records only. */
export async function mailauthVerify(raw: Buffer, keys: TestDkimKey[]): Promise<{ status: string; domain: string; selector: string; algo: string }[]> {
  const resolver = async (name: string, type: string) => {
    const k = keys.find((x) => `${x.selector}._domainkey.${x.domain}` === name.toLowerCase().replace(/\.$/, ''));
    if (type !== 'TXT' || !k) throw Object.assign(new Error(`no ${type} ${name}`), { code: 'ENOTFOUND' });
    return [k.txt.match(/.{1,255}/g) as string[]];
  };
  const result = await dkimVerify(raw, { resolver: resolver as never });
  return result.results.map((r) => {
    const x = r as unknown as { status: { result: string }; signingDomain: string; selector: string; algo: string };
    return { status: x.status.result, domain: x.signingDomain, selector: x.selector, algo: x.algo };
  });
}

/**
 * OpenDKIM's own verifier (opendkim-testmsg, Debian package opendkim-tools). It asks the
 * system resolver for the key, so it runs in a private network and mount namespace
 * (unshare) whose /etc/resolv.conf points at a DNS server on that namespace's own
 * 127.0.0.1:53 answering the test records: nothing is asked of the real DNS.
 * Resolves with the exit code and stderr (0 and "" when the signature verifies).
 */
export function opendkimVerify(programs: OpendkimPrograms, raw: Buffer, keys: TestDkimKey[]): { code: number; stderr: string } {
  const dir = mkdtempSync(join(tmpdir(), 'postern-opendkim-'));
  try {
    const zone = Object.fromEntries(keys.map((k) => [`${k.selector}._domainkey.${k.domain}`, k.txt.match(/.{1,255}/g)]));
    writeFileSync(join(dir, 'resolv.conf'), 'nameserver 127.0.0.1\noptions attempts:1 timeout:2\n');
    writeFileSync(join(dir, 'msg.eml'), raw);
    writeFileSync(join(dir, 'dns.cjs'), DNS_SCRIPT.replace('__ZONE__', JSON.stringify(zone)).replace('__DNS_PACKET__', JSON.stringify(createRequire(import.meta.url).resolve('dns-packet'))));
    const script = [
      'set -e',
      'ip link set lo up',
      `mount --bind ${dir}/resolv.conf /etc/resolv.conf`,
      `${JSON.stringify(process.execPath)} ${dir}/dns.cjs & dns=$!`,
      `for i in $(seq 50); do [ -e ${dir}/ready ] && break; sleep 0.1; done`,
      'set +e',
      `${programs.opendkim} < ${dir}/msg.eml; code=$?`,
      'kill $dns',
      'exit $code',
    ].join('\n');
    const r = spawnSync(programs.unshare, ['--user', '--map-root-user', '--net', '--mount', 'sh', '-c', script], { encoding: 'utf8', timeout: 30_000 });
    return { code: r.status ?? -1, stderr: `${r.stderr ?? ''}${r.error ? String(r.error) : ''}`.trim() };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface OpendkimPrograms {
  opendkim: string;
  unshare: string;
}

/**
 * What opendkimVerify needs: opendkim-testmsg (opendkim-tools), unshare (util-linux),
 * ip (iproute2) and a kernel that lets an unprivileged user make namespaces. Missing:
 * undefined, so the caller skips — except with CI=true, where it is an error.
 */
export function opendkimPrograms(): OpendkimPrograms | undefined {
  const opendkim = findProgram('opendkim-testmsg');
  const unshare = findProgram('unshare');
  const ip = findProgram('ip');
  if (!opendkim || !unshare || !ip) return undefined;
  try {
    execFileSync(unshare, ['--user', '--map-root-user', '--net', '--mount', 'true'], { stdio: 'ignore' });
  } catch {
    if (process.env.CI === 'true') throw new Error('opendkim-testmsg runs in a private namespace, but unshare cannot make one here (CI=true)');
    return undefined;
  }
  return { opendkim, unshare };
}

const DNS_SCRIPT = `
const dgram = require('node:dgram');
const fs = require('node:fs');
const path = require('node:path');
const packet = require(__DNS_PACKET__);
const zone = __ZONE__;
const s = dgram.createSocket('udp4');
s.on('message', (msg, r) => {
  let q;
  try { q = packet.decode(msg); } catch { return; }
  const question = q.questions && q.questions[0];
  if (!question) return;
  const data = question.type === 'TXT' ? zone[question.name.toLowerCase()] : undefined;
  s.send(packet.encode({ type: 'response', id: q.id, flags: packet.AUTHORITATIVE_ANSWER | (data ? 0 : 3), questions: q.questions,
    answers: data ? [{ type: 'TXT', name: question.name, ttl: 60, data }] : [] }), r.port, r.address);
});
s.bind(53, '127.0.0.1', () => fs.writeFileSync(path.join(__dirname, 'ready'), ''));
`;
