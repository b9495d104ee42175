import { EVENTS, type Logger } from '../events/logger.js';
import type { KeyLookup } from '../keys/lookup.js';
import type { Envelope } from '../types.js';

/** A key a group's message is encrypted to, and where it came from (for the log). */
export interface GroupKey {
  /** Armored OpenPGP key or PEM certificate. */
  material: string;
  /** Fingerprint (OpenPGP: of the key; S/MIME: SHA-256 of the certificate). */
  id: string;
  source: string;
}

/** What key lookup found for a recipient in this attempt. */
export interface FoundKeys {
  pgp?: GroupKey | undefined;
  smime?: GroupKey | undefined;
}

export interface KeyFinding {
  keys: KeyLookup;
  /** S/MIME and OpenPGP are built in memory: above these sizes they are not used (protect.<method>.maxSize). */
  smimeMaxSize: number;
  pgpMaxSize?: number | undefined;
  /** Secure Text recipients have no keys (they only have the portal). */
  isSms: (rcpt: string) => boolean;
  log: Logger;
}

/**
 * The keys of the methods each recipient could use, looked up in parallel. Asked on
 * every attempt: a key may have been imported, discovered or revoked since. A failed
 * lookup is a miss, logged.
 */
export async function findRecipientKeys(o: KeyFinding, envelope: Pick<Envelope, 'id' | 'size'>, rcpts: { rcpt: string; wants: ('pgp' | 'smime')[] }[]): Promise<Map<string, FoundKeys>> {
  const found = new Map<string, FoundKeys>();
  const failed = (rcpt: string, kind: string) => (err: Error) => {
    o.log.warn({ event: EVENTS.keySourceFailed, queueId: envelope.id, address: rcpt, kind, reason: err.message }, 'key lookup failed');
    return undefined;
  };
  const limits = { smime: o.smimeMaxSize, pgp: o.pgpMaxSize ?? Infinity };
  const fits = (kind: 'pgp' | 'smime') => envelope.size <= limits[kind];
  await Promise.all(
    rcpts.map(async (r) => {
      if (o.isSms(r.rcpt)) return;
      const wants = r.wants.filter((kind) => {
        if (fits(kind)) return true;
        const what = kind === 'pgp' ? 'OpenPGP' : 'S/MIME';
        o.log.info({ event: EVENTS.keySkipped, queueId: envelope.id, address: r.rcpt, kind, reason: `message of ${envelope.size} bytes is above protect.${kind}.maxSize (${limits[kind]})` }, `${what} not used for this message`);
        return false;
      });
      // The address as the envelope has it: the lookup compares it in its comparable form
      // (an IDN domain in either spelling finds the same key) and WKD needs the local part as written.
      const [pgp, smime] = await Promise.all([
        wants.includes('pgp') ? o.keys.pgp(r.rcpt).catch(failed(r.rcpt, 'pgp')) : undefined,
        wants.includes('smime') ? o.keys.smime(r.rcpt).catch(failed(r.rcpt, 'smime')) : undefined,
      ]);
      found.set(r.rcpt, {
        pgp: pgp && { material: pgp.info.armored, id: pgp.info.fingerprint, source: pgp.source },
        smime: smime && { material: smime.info.pem, id: smime.info.fingerprint, source: smime.source },
      });
    }),
  );
  return found;
}
