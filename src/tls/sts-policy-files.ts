import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { readJsonFile, removeStaleTemps, writeFileDurably } from '../common/durable-file.js';
import { isPolicy, policyExpiry, type MtaStsPolicy, type StsStoreFailure } from './sts-policy.js';

/** A domain as a file name: A-labels only (what comparableDomain gives for a routable domain), room left for ".json". */
const FILE_DOMAIN = /^(?=.{1,250}$)[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$/;

/**
 * MTA-STS policies on disk, one file per domain (`<dir>/<domain>.json`), so a restart does
 * not forget them: RFC 8461 §5.1 and §10.2 count on a cache that lasts max_age, and a
 * gateway that restarts would otherwise meet each domain again with nothing to hold an
 * attacker to. Each write is atomic and durable (temp file, fsync, rename, fsync of the
 * directory); writes and removals of one domain run in turn, so an old policy's removal
 * cannot delete the new one written after it. Processes sharing a dataDir (spool shards)
 * share the directory: a removal only takes a file whose policy has expired. Nothing here
 * throws once the directory is open: a failed write or removal is counted in `errors`,
 * reported to `onFailure`, and the policy stays in memory.
 */
export class StsPolicyFiles {
  /** Writes and removals that failed (a full disk); the policy still applies from memory. */
  errors = 0;
  private readonly inTurn = new Map<string, Promise<void>>();

  constructor(
    readonly dir: string,
    private readonly onFailure?: StsStoreFailure,
  ) {}

  /** Makes the directory, drops stale temp files and expired or unreadable policies, and returns the rest. */
  async load(now = Date.now()): Promise<[string, MtaStsPolicy][]> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await removeStaleTemps(this.dir, now);
    const found: [string, MtaStsPolicy][] = [];
    for (const name of await readdir(this.dir)) {
      if (!name.endsWith('.json')) continue;
      const file = join(this.dir, name);
      const domain = name.slice(0, -'.json'.length);
      const policy = await readPolicy(file, domain);
      if (policy && now < policyExpiry(policy)) found.push([domain, policy]);
      else await rm(file, { force: true });
    }
    return found;
  }

  write(domain: string, policy: MtaStsPolicy): Promise<void> {
    if (!FILE_DOMAIN.test(domain)) return Promise.resolve(); // not a name to put in a path: memory only
    return this.turn(domain, 'write', () => writeFileDurably(this.fileOf(domain), `${JSON.stringify({ domain, policy })}\n`));
  }

  /** Removes the domain's file if the policy in it has expired (another process may have written a fresh one). */
  remove(domain: string, now = Date.now()): Promise<void> {
    if (!FILE_DOMAIN.test(domain)) return Promise.resolve();
    return this.turn(domain, 'remove', async () => {
      const policy = await readPolicy(this.fileOf(domain), domain);
      if (!policy || now >= policyExpiry(policy)) await rm(this.fileOf(domain), { force: true });
    });
  }

  private fileOf(domain: string): string {
    return join(this.dir, `${domain}.json`);
  }

  /** Runs op after the domain's previous write or removal; a failure is counted, never thrown. */
  private turn(domain: string, operation: 'write' | 'remove', op: () => Promise<void>): Promise<void> {
    const next = (this.inTurn.get(domain) ?? Promise.resolve()).then(op).catch((err: Error) => {
      this.errors++;
      this.onFailure?.({ domain, operation, error: err.message });
    });
    this.inTurn.set(domain, next);
    void next.then(() => {
      if (this.inTurn.get(domain) === next) this.inTurn.delete(domain);
    });
    return next;
  }
}

/**
 * The policy in a file, if there is one and it is the named domain's. A file that cannot
 * be read for another reason (permissions) is an error: at start it stops the start.
 */
async function readPolicy(file: string, domain: string): Promise<MtaStsPolicy | undefined> {
  // Not JSON (edited by hand): dropped like an expired one.
  const parsed = await readJsonFile<{ domain?: unknown; policy?: unknown } | null>(file);
  return parsed?.domain === domain && isPolicy(parsed.policy) ? parsed.policy : undefined;
}
