/** A domain's MTA-STS policy as fetched (RFC 8461 §3.2), with the id its TXT record gave. */
export interface MtaStsPolicy {
  id: string;
  mode: 'enforce' | 'testing' | 'none';
  mx: string[];
  /** Seconds (max_age). */
  maxAge: number;
  /** When it was fetched (ms since the epoch). */
  fetchedAt: number;
}

/**
 * Where policies are kept until their max_age: a store of their own (sts-policy-memory.ts
 * with its files, or sts-policy-shared.ts on Redis), never a cache that other entries can
 * push them out of. A cached policy is what keeps applying when an attacker blocks
 * discovery or the fetch (RFC 8461 §5.1), so losing it early opens that door.
 * Neither method throws: a store that cannot write keeps what it can and counts the rest.
 */
export interface StsPolicyStore {
  /** The domain's policy while it is within its max_age at `now`. */
  get(domain: string, now?: number): Promise<MtaStsPolicy | undefined>;
  put(domain: string, policy: MtaStsPolicy, now?: number): Promise<void>;
}

/**
 * Told when a policy could not be kept durably (a full disk, Redis down): it still applies
 * from memory, or for this delivery only, but a restart (or the other instances) will
 * not have it, so operators must hear of it.
 */
export type StsStoreFailure = (failure: { domain: string; operation: 'write' | 'remove'; error: string }) => void;

/** When a policy stops applying: max_age after it was fetched. */
export function policyExpiry(p: MtaStsPolicy): number {
  return p.fetchedAt + p.maxAge * 1000;
}

/** Whether a value read back (a file, Redis) has the shape of a policy. */
export function isPolicy(v: unknown): v is MtaStsPolicy {
  const p = v as Partial<MtaStsPolicy> | null;
  return (
    typeof p === 'object' &&
    p !== null &&
    typeof p.id === 'string' &&
    (p.mode === 'enforce' || p.mode === 'testing' || p.mode === 'none') &&
    Array.isArray(p.mx) &&
    p.mx.every((m) => typeof m === 'string') &&
    Number.isFinite(p.maxAge) &&
    Number.isFinite(p.fetchedAt)
  );
}
