import { readKey, type PublicKey } from 'openpgp';
import type { PosternConfig } from '../config/schema.js';
import type { Logger } from '../events/logger.js';
import { loadIdentities, readSetting, type Expiry, type IdentityFor, type OrgIdentity } from '../keys/identities.js';
import { inspectPgpKey } from '../keys/pgp-key.js';
import { encryptionProblem } from '../keys/smime-cert.js';
import { readCertificate, type Certificate } from '../keys/x509.js';
import { ExpiryWatch } from './expiry-watch.js';
import { ParsedCache } from './parsed-cache.js';
import { escrowDate, pgpEscrow, type PgpEscrow } from './pgp-escrow.js';
import { pgpProtect } from './pgp.js';
import { smimeProtect } from './smime.js';

export interface ProtectRequest {
  method: 'pgp' | 'smime';
  /** The recipients' armored OpenPGP keys or PEM certificates. */
  recipientKeys: string[];
  /** The sender's domain (From header, else envelope): whose organisation identity signs. */
  senderDomain?: string | undefined;
}

export interface Escrow {
  pgp?: PublicKey | undefined;
  /** When the OpenPGP escrow key was checked usable (at start); by default when the Protector was made. */
  pgpUsableAt?: Date | undefined;
  smime?: Certificate | undefined;
}

/**
 * Turns a message into its encrypted form for one variant: PGP/MIME or S/MIME, signed
 * by the sender domain's organisation identity when protect.<method>.sign is on and one
 * is configured (an identity past its expiry no longer signs: `expiryWatch` says so), and
 * also encrypted to the escrow key/certificate when configured, past its expiry too
 * (`expiryWatch` warns; pgp-escrow.ts says how for OpenPGP). Recipients' keys are
 * parsed once and reused (the same recipients come back); the size caps guard memory.
 */
export class Protector {
  private readonly pgpKeys = new ParsedCache<Promise<PublicKey>>();
  private readonly certs = new ParsedCache<Certificate>();
  private readonly madeAt = new Date();
  private pgpEscrow: Promise<PgpEscrow> | undefined;

  constructor(
    private readonly config: PosternConfig['protect'],
    private readonly identityFor: IdentityFor,
    private readonly escrow: Escrow = {},
    /** Warns ahead of the identities' and escrow keys' expiry; the gateway runs it daily. */
    readonly expiryWatch?: ExpiryWatch | undefined,
  ) {}

  async protect(raw: Buffer, req: ProtectRequest, now = Date.now()): Promise<Buffer> {
    const identity = req.senderDomain ? this.identityFor(req.senderDomain) : undefined;
    const { method } = req;
    // The planner keeps bigger messages away from these methods; this guards the memory bound.
    if (raw.length > this.config[method].maxSize) throw new Error(`message of ${raw.length} bytes is above protect.${method}.maxSize (${this.config[method].maxSize})`);
    if (method === 'pgp') {
      const escrow = this.escrow.pgp ? await (this.pgpEscrow ??= pgpEscrow(this.escrow.pgp, this.escrow.pgpUsableAt ?? this.madeAt)) : undefined;
      return pgpProtect(raw, {
        recipientKeys: await Promise.all(req.recipientKeys.map((k) => this.pgpKey(k))),
        signingKey: this.config.pgp.sign ? current(identity, now)?.pgp : undefined,
        escrowKey: escrow?.key,
        escrowDate: escrow && escrowDate(escrow, new Date(now)),
        protectSubject: this.config.pgp.protectSubject,
      });
    }
    return smimeProtect(raw, {
      recipientCerts: [...req.recipientKeys.map((pem) => this.certs.get(pem, readCertificate)), ...(this.escrow.smime ? [this.escrow.smime] : [])],
      signer: this.config.smime.sign ? current(identity, now)?.smime : undefined,
    });
  }

  private pgpKey(armored: string): Promise<PublicKey> {
    return this.pgpKeys.get(armored, (text) =>
      readKey({ armoredKey: text }).catch((err: unknown) => {
        this.pgpKeys.delete(text);
        throw err;
      }),
    );
  }
}

/** The parts of an identity that can still sign at `now`. */
function current(identity: OrgIdentity | undefined, now: number): OrgIdentity | undefined {
  if (!identity) return undefined;
  const pgp = identity.pgpExpiresAt === undefined || now < identity.pgpExpiresAt ? identity.pgp : undefined;
  const smime = identity.smime && now <= identity.smime.cert.notAfter.getTime() && identity.smime.chain.every((c) => now <= c.notAfter.getTime()) ? identity.smime : undefined;
  return { ...identity, pgp, smime };
}

/**
 * Builds the Protector from the config: identities and escrow material, checked at
 * start (a key that cannot be used stops it, naming the setting), and the expiry watch,
 * which warns at once when one expires within 30 days (the gateway then starts its daily
 * timer).
 */
export async function createProtector(config: PosternConfig, log?: Logger): Promise<Protector> {
  const now = new Date();
  const escrow: Escrow = {};
  const { identityFor, expiries } = await loadIdentities(config, now);
  const watched: Expiry[] = [...expiries];
  const { escrowKey } = config.protect.pgp;
  if (escrowKey) {
    const armored = await readSetting('protect.pgp.escrowKey', escrowKey);
    const info = await inspectPgpKey(armored, now).catch((err: Error) => {
      throw new Error(`protect.pgp.escrowKey: not an OpenPGP public key (${err.message})`);
    });
    if (info.unusable) throw new Error(`protect.pgp.escrowKey: ${info.unusable}`);
    escrow.pgp = await readKey({ armoredKey: info.armored });
    escrow.pgpUsableAt = now;
    // Watched until the first of the key's and its encryption subkey's expiry.
    const { expiresAt } = await pgpEscrow(escrow.pgp, now);
    if (Number.isFinite(expiresAt)) watched.push({ setting: 'protect.pgp.escrowKey', expiresAt });
  }
  const { escrowCert } = config.protect.smime;
  if (escrowCert) {
    const pem = await readSetting('protect.smime.escrowCert', escrowCert);
    let cert: Certificate;
    try {
      cert = readCertificate(pem);
    } catch (err) {
      throw new Error(`protect.smime.escrowCert: not a PEM certificate (${(err as Error).message})`);
    }
    const problem = encryptionProblem(cert, now);
    if (problem) throw new Error(`protect.smime.escrowCert: ${problem}`);
    escrow.smime = cert;
    watched.push({ setting: 'protect.smime.escrowCert', expiresAt: cert.notAfter.getTime() });
  }
  const watch = log ? new ExpiryWatch(watched, log) : undefined;
  watch?.check(now.getTime());
  return new Protector(config.protect, identityFor, escrow, watch);
}
