import type { Redis } from 'ioredis';

export interface DurabilityVerdict {
  /** An acknowledged message survives a Redis crash (or the check found nothing against it). */
  ok: boolean;
  /** 'unknown': the server hides its settings (CONFIG disabled, as on many managed Redis). */
  status: 'ok' | 'unsafe' | 'unknown';
  problems: string[];
  settings: { appendonly?: string | undefined; appendfsync?: string | undefined; maxmemoryPolicy?: string | undefined; connectedReplicas?: number | undefined };
}

/**
 * Reads the server's persistence and eviction settings at start-up. "250" promises the
 * message is durable, which on Redis holds when every write reaches the disk before the
 * reply (AOF with appendfsync always) or reaches replicas before we answer (WAIT,
 * waitReplicas > 0), and when Redis never throws it away to make room (maxmemory-policy
 * noeviction). The caller decides whether a bad verdict is a warning or a refusal to start.
 */
export async function checkRedisDurability(redis: Redis, opts: { waitReplicas?: number } = {}): Promise<DurabilityVerdict> {
  const waitReplicas = opts.waitReplicas ?? 0;
  const problems: string[] = [];
  const unknowns: string[] = [];
  const replicas = await infoField(redis, 'replication', 'connected_slaves');
  const connectedReplicas = replicas === undefined ? undefined : Number(replicas);
  const config = await configGet(redis, ['appendonly', 'appendfsync', 'maxmemory-policy']);
  let appendonly = config?.appendonly;
  const appendfsync = config?.appendfsync;
  // CONFIG renamed away: INFO still tells whether AOF is on (not its fsync policy) and the eviction policy.
  if (!config) appendonly = { '0': 'no', '1': 'yes' }[(await infoField(redis, 'persistence', 'aof_enabled')) ?? ''];
  const maxmemoryPolicy = config?.['maxmemory-policy'] ?? (await infoField(redis, 'memory', 'maxmemory_policy'));

  const replicated = waitReplicas > 0 && connectedReplicas !== undefined && connectedReplicas >= waitReplicas;
  if (waitReplicas > 0 && !replicated) {
    problems.push(`redis.waitReplicas is ${waitReplicas} but ${connectedReplicas ?? 'an unknown number of'} replicas are connected: commits fail (4xx) until enough replicas acknowledge`);
  }
  const aofSafe = appendonly === 'yes' && appendfsync === 'always';
  if (!aofSafe && !replicated) {
    if (appendonly === 'no') problems.push('AOF is off (appendonly no): a Redis crash or restart loses messages already acknowledged with 250 (at best back to the last RDB snapshot)');
    else if (appendfsync === 'everysec') problems.push('appendfsync is everysec: a Redis crash can lose about the last second of messages already acknowledged with 250');
    else if (appendfsync === 'no') problems.push('appendfsync is no: the operating system decides when acknowledged messages reach the disk; a machine crash can lose them');
    else unknowns.push(`cannot read the persistence settings (CONFIG GET is disabled on this server${appendonly === 'yes' ? '; AOF is on, its fsync policy unknown' : ''}): make sure AOF runs with appendfsync always, or set redis.waitReplicas`);
    if (problems.length && waitReplicas === 0) problems.push('no replica acknowledgement either (redis.waitReplicas is 0): set appendonly yes and appendfsync always, or wait for replicas');
  }
  const eviction = evictionProblem(maxmemoryPolicy);
  if (eviction) (maxmemoryPolicy === undefined ? unknowns : problems).push(eviction);
  const all = [...problems, ...unknowns];
  return { ok: all.length === 0, status: problems.length ? 'unsafe' : unknowns.length ? 'unknown' : 'ok', problems: all, settings: { appendonly, appendfsync, maxmemoryPolicy, connectedReplicas } };
}

/**
 * Portal messages, link tokens, sessions, webhook deliveries and bodies being received
 * carry an expiry; queued messages do not. With a volatile-* policy (ElastiCache's
 * default is volatile-lru) a full Redis deletes the former, with allkeys-* any key,
 * acknowledged mail included, and says nothing. Only noeviction keeps everything: a full
 * Redis then refuses writes, and new mail gets 451 instead of being lost later.
 */
function evictionProblem(policy: string | undefined): string | undefined {
  if (policy === 'noeviction') return undefined;
  const fix = 'set maxmemory-policy noeviction (a full Redis then refuses new mail with 451 instead of dropping what it holds)';
  if (policy === undefined) return `cannot read maxmemory-policy (neither CONFIG GET nor INFO memory tells it): make sure it is noeviction, or Redis may evict acknowledged data when it is full`;
  const what = policy.startsWith('allkeys-') ? 'any key, queued messages included' : 'keys with an expiry: portal messages, link tokens, sessions, webhook deliveries, bodies being received';
  return `maxmemory-policy is ${policy}: when Redis reaches maxmemory it evicts ${what}, data Postern already acknowledged; ${fix}`;
}

/** CONFIG GET of several parameters, or undefined when the command is not available. */
async function configGet(redis: Redis, names: string[]): Promise<Record<string, string> | undefined> {
  try {
    const flat = (await redis.call('CONFIG', 'GET', ...names)) as string[];
    const out: Record<string, string> = {};
    for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i] as string] = flat[i + 1] as string;
    return names.every((n) => n in out) ? out : undefined;
  } catch {
    return undefined;
  }
}

async function infoField(redis: Redis, section: string, field: string): Promise<string | undefined> {
  try {
    const text = await redis.info(section);
    return new RegExp(`^${field}:(.*)$`, 'm').exec(text)?.[1]?.trim();
  } catch {
    return undefined;
  }
}
