import type { SharedCache } from '../common/shared-cache.js';
import { isPolicy, policyExpiry, type MtaStsPolicy, type StsPolicyStore, type StsStoreFailure } from './sts-policy.js';

/**
 * MTA-STS policies on the Redis the instances share (queue.backend redis), each under
 * `mta-sts:policy:<domain>` expiring with its max_age: one instance's fetch serves all,
 * and a restart of any of them forgets nothing. Only for a cache that keeps an entry
 * until its expiry — RedisCache: no cap, and Redis itself must not evict
 * (maxmemory-policy noeviction, as the queue already requires) — never a MemoryCache,
 * whose cap would push policies out (use MemoryStsPolicies there).
 */
export class SharedStsPolicies implements StsPolicyStore {
  constructor(
    private readonly cache: SharedCache,
    private readonly onFailure?: StsStoreFailure,
  ) {}

  async get(domain: string, now = Date.now()): Promise<MtaStsPolicy | undefined> {
    const p = await this.cache.get<unknown>(keyOf(domain));
    return isPolicy(p) && now < policyExpiry(p) ? p : undefined;
  }

  async put(domain: string, policy: MtaStsPolicy, now = Date.now()): Promise<void> {
    if (!(await this.cache.set(keyOf(domain), policy, policyExpiry(policy) - now))) {
      this.onFailure?.({ domain, operation: 'write', error: 'Redis did not take the policy' });
    }
  }
}

const keyOf = (domain: string) => `mta-sts:policy:${domain}`;
