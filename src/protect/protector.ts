import forge from 'node-forge';
import type { PosternConfig } from '../config/schema.js';
import { loadIdentities, textOrFile, type IdentityFor } from '../keys/identities.js';
import { inspectPgpKey } from '../keys/pgp-key.js';
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
  pgp?: string | undefined;
  smime?: string | undefined;
}

/**
 * Turns a message into its encrypted form for one variant: PGP/MIME or S/MIME, signed
 * by the sender domain's organisation identity when protect.<method>.sign is on and one
 * is configured, and also encrypted to the escrow key/certificate when configured.
 */
export class Protector {
  constructor(
    private readonly config: PosternConfig['protect'],
    private readonly identityFor: IdentityFor,
    private readonly escrow: Escrow = {},
  ) {}

  async protect(raw: Buffer, req: ProtectRequest): Promise<Buffer> {
    const identity = req.senderDomain ? this.identityFor(req.senderDomain) : undefined;
    if (req.method === 'pgp') {
      return pgpProtect(raw, {
        recipientKeys: req.recipientKeys,
        signingKey: this.config.pgp.sign ? identity?.pgp : undefined,
        escrowKey: this.escrow.pgp,
        protectSubject: this.config.pgp.protectSubject,
      });
    }
    // The planner keeps bigger messages away from S/MIME; this guards the memory bound.
    if (raw.length > this.config.smime.maxSize) throw new Error(`message of ${raw.length} bytes is above protect.smime.maxSize (${this.config.smime.maxSize})`);
    return smimeProtect(raw, {
      recipientCerts: [...req.recipientKeys, ...(this.escrow.smime ? [this.escrow.smime] : [])],
      signer: this.config.smime.sign ? identity?.smime : undefined,
    });
  }
}

/** Builds the Protector from the config: identities and escrow material, checked at start. */
export async function createProtector(config: PosternConfig): Promise<Protector> {
  const escrow: Escrow = {};
  const { escrowKey } = config.protect.pgp;
  if (escrowKey) {
    const info = await inspectPgpKey(await textOrFile(escrowKey));
    if (info.unusable) throw new Error(`protect.pgp.escrowKey: ${info.unusable}`);
    escrow.pgp = info.armored;
  }
  const { escrowCert } = config.protect.smime;
  if (escrowCert) {
    const pem = await textOrFile(escrowCert);
    try {
      forge.pki.certificateFromPem(pem);
    } catch (err) {
      throw new Error(`protect.smime.escrowCert: not a PEM RSA certificate (${(err as Error).message})`);
    }
    escrow.smime = pem;
  }
  return new Protector(config.protect, await loadIdentities(config), escrow);
}
