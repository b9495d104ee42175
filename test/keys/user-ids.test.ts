import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { enums, generateKey, readKey, type PrivateKey, type SecretKeyPacket } from 'openpgp';
import { beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/events/logger.js';
import { importKeys } from '../../src/keys/import.js';
import { KeyLookup } from '../../src/keys/lookup.js';
import { inspectPgpKey } from '../../src/keys/pgp-key.js';
import { FileKeyStore } from '../../src/keys/store.js';

/**
 * Which addresses an OpenPGP key is for: only user IDs its holder vouches for now — a valid
 * self-certification, not revoked. Bob moved to a new clinic and revoked his old address;
 * someone appended an address to his key, signed by another key. Neither may make his key
 * the key of that address (mail to it would be encrypted to someone who does not read it).
 */
const OLD = 'bob@old-hospital.test';
const NEW = 'bob@new-clinic.test';
const APPENDED = 'ward-7@old-hospital.test';

describe('OpenPGP user IDs that count as the key\'s addresses', () => {
  let armored: string;

  beforeAll(async () => {
    const { privateKey } = (await generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ email: NEW }, { email: OLD }], format: 'object' })) as unknown as { privateKey: PrivateKey };
    const old = privateKey.users.find((u) => u.userID?.email === OLD)!;
    // Bob's revocation of the old user ID (what `gpg --quick-revoke-uid` makes).
    await old.update(await old.revoke(privateKey.keyPacket as SecretKeyPacket, { flag: enums.reasonForRevocation.userIDInvalid }));
    // A user ID appended by someone else, certified by their own key, not by Bob's.
    const { privateKey: stranger } = (await generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ email: APPENDED }], format: 'object' })) as unknown as { privateKey: PrivateKey };
    const packets = privateKey.toPublic().toPacketList();
    packets.splice(1, 0, ...(stranger.users[0]!.toPacketList() as unknown as typeof packets));
    armored = (await readKey({ binaryKey: packets.write() })).armor();
  });

  it('only the user IDs with a valid, unrevoked self-certification are the key\'s addresses', async () => {
    expect((await inspectPgpKey(armored)).emails).toEqual([NEW]);
  });

  it('import: the revoked address is not served, and cannot be asked for', async () => {
    const store = new FileKeyStore(join(mkdtempSync(join(tmpdir(), 'postern-uids-')), 'keys'));
    await store.open();
    expect((await importKeys(store, armored, {})).map((r) => r.addresses)).toEqual([[NEW]]);
    expect((await importKeys(store, armored, { address: OLD }))[0]?.refused).toBe(`it does not name ${OLD} (it names ${NEW})`);
    expect((await importKeys(store, armored, { address: APPENDED }))[0]?.refused).toMatch(/^it does not name/);
  });

  it('a key stored for the address before Bob revoked it is no longer used for it', async () => {
    const store = new FileKeyStore(join(mkdtempSync(join(tmpdir(), 'postern-uids-')), 'keys'));
    await store.open();
    const info = await inspectPgpKey(armored);
    await store.put({ id: `pgp:${info.fingerprint}`, kind: 'pgp', addresses: [OLD, NEW], source: 'import', addedAt: Date.now(), material: armored });
    const lookup = new KeyLookup({ keys: validateConfig({ hostname: 'postern.test', keys: { discovery: ['store'] } }).keys, store, resolve: async () => [], httpsTrust: [], log: createLogger('silent') });
    expect(await lookup.pgp(OLD)).toBeUndefined();
    expect(await lookup.pgp(NEW)).toMatchObject({ source: 'import' });
  });
});
