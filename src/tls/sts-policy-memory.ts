import { StsPolicyFiles } from './sts-policy-files.js';
import { policyExpiry, type MtaStsPolicy, type StsPolicyStore, type StsStoreFailure } from './sts-policy.js';

/**
 * At most this many domains' policies in one process. Real policies are a few hundred
 * bytes (a policy file is at most 64 KB, mta-sts.ts), so the default is some 15 MB in
 * the usual case; only domains that publish a policy, serve it over HTTPS with a valid
 * certificate and were mailed within their max_age take a place.
 */
export const DEFAULT_MAX_POLICIES = 50_000;

/**
 * MTA-STS policies of a single instance (queue.backend fs): in memory, with their files
 * under dataDir when given. Only max_age ends a policy: nothing else is kept here, and
 * when the store is full (maxPolicies) expired policies make room, and if none has
 * expired the new policy is not kept (counted in `refused`; the delivery that fetched it
 * still uses it, and the next one fetches again) — a policy already held is never given
 * up before its max_age to make room, which is what an attacker flooding the store
 * would want.
 */
export class MemoryStsPolicies implements StsPolicyStore {
  /** Policies not kept because the store was full of unexpired ones. */
  refused = 0;
  private readonly policies = new Map<string, MtaStsPolicy>();

  constructor(
    private readonly maxPolicies = DEFAULT_MAX_POLICIES,
    private readonly files?: StsPolicyFiles,
  ) {}

  /** The store with the policies saved in dir (read now, written on every put). */
  static async open(dir: string, opts: { maxPolicies?: number; now?: number; onFailure?: StsStoreFailure } = {}): Promise<MemoryStsPolicies> {
    const { maxPolicies = DEFAULT_MAX_POLICIES, now = Date.now() } = opts;
    const files = new StsPolicyFiles(dir, opts.onFailure);
    const store = new MemoryStsPolicies(maxPolicies, files);
    for (const [domain, policy] of await files.load(now)) {
      if (store.policies.size >= maxPolicies) break;
      store.policies.set(domain, policy);
    }
    return store;
  }

  get size(): number {
    return this.policies.size;
  }

  async get(domain: string, now = Date.now()): Promise<MtaStsPolicy | undefined> {
    const p = this.policies.get(domain);
    if (!p) return undefined;
    if (now < policyExpiry(p)) return p;
    this.policies.delete(domain);
    void this.files?.remove(domain, now);
    return undefined;
  }

  async put(domain: string, policy: MtaStsPolicy, now = Date.now()): Promise<void> {
    if (!this.policies.has(domain) && this.policies.size >= this.maxPolicies) {
      this.dropExpired(now);
      if (this.policies.size >= this.maxPolicies) {
        this.refused++;
        return;
      }
    }
    this.policies.set(domain, policy);
    await this.files?.write(domain, policy);
  }

  private dropExpired(now: number): void {
    for (const [domain, p] of this.policies) {
      if (now < policyExpiry(p)) continue;
      this.policies.delete(domain);
      void this.files?.remove(domain, now);
    }
  }
}
