import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKey, readKey } from 'openpgp';
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/events/logger.js';
import { importKeys } from '../../src/keys/import.js';
import { KeyLookup } from '../../src/keys/lookup.js';
import { KeyStore } from '../../src/keys/store.js';
import { SmimeTrust } from '../../src/keys/smime-trust.js';
import { runCli as cli } from '../helpers/cli.js';
import { createTestCa } from '../helpers/pki.js';

const pgpKey = (email: string) => generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ email }], format: 'armored' });
const fpr = async (armored: string) => (await readKey({ armoredKey: armored })).getFingerprint().toUpperCase();

/** A store-only lookup that trusts `trust` for S/MIME. */
function lookupFor(store: KeyStore, trust: string[]): KeyLookup {
  const config = validateConfig({ hostname: 'postern.test', keys: { discovery: ['store'] } });
  return new KeyLookup({ keys: config.keys, store, resolve: async () => [], httpsTrust: [], smimeTrust: SmimeTrust.fromPem(trust), log: createLogger('silent') });
}

async function newStore(trust: string[] = []): Promise<{ store: KeyStore; lookup: KeyLookup }> {
  const store = new KeyStore(join(mkdtempSync(join(tmpdir(), 'postern-store-')), 'keys'));
  await store.open();
  return { store, lookup: lookupFor(store, trust) };
}

describe('key store and import', () => {
  it('stores a key for the addresses it names, or for --address / --domain; refuses what could not be used', async () => {
    const { store, lookup } = await newStore();
    const pat = await pgpKey('pat@dest.test');
    const gw = await pgpKey('gateway@partner.test');
    expect(await importKeys(store, pat.publicKey, {})).toEqual([{ id: `pgp:${await fpr(pat.publicKey)}`, kind: 'pgp', addresses: ['pat@dest.test'], expiresAt: undefined }]);
    const [domainKey] = await importKeys(store, gw.publicKey, { domain: 'partner.test' });
    expect(domainKey?.addresses).toEqual(['@partner.test']);
    expect(domainKey?.refused).toBeUndefined();
    // A private key block is stored as its public part.
    expect((await store.all()).map((r) => r.material).join()).not.toContain('PRIVATE');
    const [wrong] = await importKeys(store, pat.publicKey, { address: 'other@dest.test' });
    expect(wrong?.refused).toBe('it does not name other@dest.test (it names pat@dest.test)');
    const anonymous = await generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ name: 'No Mail' }], format: 'armored' });
    expect((await importKeys(store, anonymous.publicKey, {}))[0]?.refused).toBe('it names no address: give --address or --domain');

    expect(await lookup.pgp('pat@dest.test')).toMatchObject({ source: 'import', from: `pgp:${await fpr(pat.publicKey)}` });
    // The domain key serves every address of the domain (gateway-to-gateway).
    expect(await lookup.pgp('anyone@partner.test')).toMatchObject({ from: domainKey!.id });
    expect(await lookup.pgp('anyone@dest.test')).toBeUndefined();
    expect(await store.remove(await fpr(pat.publicKey))).toBe(true);
    expect(await lookup.pgp('pat@dest.test')).toBeUndefined();
  });

  it('S/MIME: a certificate is stored only when it chains to keys.smimeTrust and is current', async () => {
    const ours = createTestCa('Trusted CA');
    const theirs = createTestCa('Untrusted CA');
    const { store, lookup } = await newStore([ours.cert]);
    const [refused] = await importKeys(store, theirs.issueSmime('pat@dest.test').cert, { smimeTrust: SmimeTrust.fromPem([ours.cert]) });
    expect(refused?.refused).toMatch(/^not trusted: /);
    const [expired] = await importKeys(store, ours.issueSmime('old@dest.test', { expired: true }).cert, { smimeTrust: SmimeTrust.fromPem([ours.cert]) });
    expect(expired?.refused).toMatch(/^expired on /);
    const [stored] = await importKeys(store, ours.issueSmime('pat@dest.test').cert, { smimeTrust: SmimeTrust.fromPem([ours.cert]) });
    expect(stored).toMatchObject({ kind: 'smime', addresses: ['pat@dest.test'] });
    expect(stored?.refused).toBeUndefined();
    expect(await lookup.smime('PAT@dest.test')).toMatchObject({ source: 'import', from: stored!.id });
    // The lookup checks again with its own trust store: one that lost the CA uses nothing.
    expect(await lookupFor(store, [theirs.cert]).smime('pat@dest.test')).toBeUndefined();
  });
});

describe('postern keys (CLI)', () => {
  it('import, list, show, remove; refusals and unknown ids exit 1', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'postern-keys-cli-'));
    const config = join(dir, 'postern.yaml');
    const ca = createTestCa('CLI S/MIME CA');
    writeFileSync(config, `hostname: postern.test\ndataDir: ${join(dir, 'var')}\nkeys:\n  smimeTrust: [${ca.caFile}]\n`);
    const pat = await pgpKey('pat@dest.test');
    const file = join(dir, 'keys.asc');
    writeFileSync(file, `${pat.publicKey}\n${ca.issueSmime('pat@dest.test').cert}`);
    const imported = await cli(['keys', 'import', file, '-c', config]);
    expect(imported.code).toBe(0);
    expect(imported.stdout).toMatch(new RegExp(`^stored pgp:${await fpr(pat.publicKey)} for pat@dest\\.test \\(expires never\\)$`, 'm'));
    expect(imported.stdout).toMatch(/^stored smime:[0-9A-F]{64} for pat@dest\.test \(expires \d{4}-\d\d-\d\d\)$/m);

    const sha1 = await cli(['keys', 'import', join(process.cwd(), 'test/fixtures/keys/sha1-self-signed.asc'), '-c', config]);
    expect(sha1.code).toBe(1);
    expect(sha1.stderr).toMatch(/^refused pgp:[0-9A-F]{40}: self-signed with SHA-1/m);

    const list = await cli(['keys', 'list', '-c', config, '--json']);
    const rows = JSON.parse(list.stdout) as { id: string; usable: boolean; source: string }[];
    expect(rows.map((r) => [r.id.split(':')[0], r.usable, r.source]).sort()).toEqual([['pgp', true, 'import'], ['smime', true, 'import']]);

    const show = await cli(['keys', 'show', 'pat@dest.test', '-c', config]);
    expect(show.stdout).toMatch(new RegExp(`^OpenPGP \\(store\\): ${await fpr(pat.publicKey)} \\(import, pgp:`, 'm'));
    expect(show.stdout).toMatch(/^S\/MIME: [0-9A-F]{64} \(import, smime:/m);

    const removed = await cli(['keys', 'remove', rows.find((r) => r.id.startsWith('smime:'))!.id, '-c', config]);
    expect(removed.code).toBe(0);
    expect((await cli(['keys', 'show', 'pat@dest.test', '-c', config])).stdout).toMatch(/^S\/MIME: none usable$/m);
    expect((await cli(['keys', 'remove', 'pgp:0000', '-c', config])).code).toBe(1);
  });
});
