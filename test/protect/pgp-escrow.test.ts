import { generateKey, readKey } from 'openpgp';
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/events/logger.js';
import { escrowDate, pgpEscrow } from '../../src/protect/pgp-escrow.js';
import { createProtector } from '../../src/protect/protector.js';

const DAY = 86_400_000;
// The primary key never expires; the encryption subkey, what the escrow is encrypted to, in 20 days.
const subkeyExpiring = () => generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ email: 'compliance@client.test' }], subkeys: [{ keyExpirationTime: (20 * DAY) / 1000 }], format: 'armored' });

describe('OpenPGP escrow key: when it expires, and what it is encrypted as of then', () => {
  it('keys.expiring watches the encryption subkey when it expires before the primary key', async () => {
    const escrow = await subkeyExpiring();
    const lines: Record<string, unknown>[] = [];
    const log = createLogger('info', { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) });
    await createProtector(validateConfig({ hostname: 'postern.test', protect: { pgp: { escrowKey: escrow.publicKey } } }), log);
    expect(lines.filter((l) => l.event === 'keys.expiring').map((l) => [l.setting, l.daysLeft])).toEqual([['protect.pgp.escrowKey', 19]]);
  });

  it('now while it can be encrypted to; past its (subkey\'s) expiry, the moment it was checked usable', async () => {
    const key = await readKey({ armoredKey: (await subkeyExpiring()).publicKey });
    const checked = new Date();
    const escrow = await pgpEscrow(key, checked);
    const subkeyEnd = (await key.subkeys[0]!.getExpirationTime()) as Date;
    expect(escrow.expiresAt).toBe(subkeyEnd.getTime());
    const soon = new Date(subkeyEnd.getTime() - 1000);
    expect(escrowDate(escrow, soon)).toBe(soon);
    expect(escrowDate(escrow, subkeyEnd)).toBe(checked);
    expect(escrowDate(escrow, new Date(subkeyEnd.getTime() + 365 * DAY))).toBe(checked);
  });
});
