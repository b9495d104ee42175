import type { Redis } from 'ioredis';

export interface DurabilityVerdict {
  /** An acknowledged message survives a Redis crash (or the check found nothing against it). */
  ok: boolean;
  /** 'unknown': the server hides its settings (CONFIG disabled, as on many managed Redis). */
  status: 'ok' | 'unsafe' | 'unknown';
  problems: string[];
  settings: { appendonly?: string | undefined; appendfsync?: string | undefined; connectedReplicas?: number | undefined };
}

/**
 * Reads the server's persistence settings at start-up. "250" promises the message is
 * durable, which on Redis holds when every write reaches the disk before the reply (AOF
 * with appendfsync always) or reaches replicas before we answer (WAIT, waitReplicas > 0).
 * The caller decides whether a bad verdict is a warning or a refusal to start.
 */
export async function checkRedisDurability(redis: Redis, opts: { waitReplicas?: number } = {}): Promise<DurabilityVerdict> {
  const waitReplicas = opts.waitReplicas ?? 0;
  const problems: string[] = [];
  const replicas = await infoField(redis, 'replication', 'connected_slaves');
  const connectedReplicas = replicas === undefined ? undefined : Number(replicas);
  const config = await configGet(redis, ['appendonly', 'appendfsync']);
  let appendonly = config?.appendonly;
  const appendfsync = config?.appendfsync;
  // CONFIG renamed away: INFO still tells whether AOF is on, though not its fsync policy.
  if (!config) appendonly = { '0': 'no', '1': 'yes' }[(await infoField(redis, 'persistence', 'aof_enabled')) ?? ''];

  const replicated = waitReplicas > 0 && connectedReplicas !== undefined && connectedReplicas >= waitReplicas;
  if (waitReplicas > 0 && !replicated) {
    problems.push(`redis.waitReplicas is ${waitReplicas} but ${connectedReplicas ?? 'an unknown number of'} replicas are connected: commits fail (4xx) until enough replicas acknowledge`);
  }
  const aofSafe = appendonly === 'yes' && appendfsync === 'always';
  let unknown = false;
  if (!aofSafe && !replicated) {
    if (appendonly === 'no') problems.push('AOF is off (appendonly no): a Redis crash or restart loses messages already acknowledged with 250 (at best back to the last RDB snapshot)');
    else if (appendfsync === 'everysec') problems.push('appendfsync is everysec: a Redis crash can lose about the last second of messages already acknowledged with 250');
    else if (appendfsync === 'no') problems.push('appendfsync is no: the operating system decides when acknowledged messages reach the disk; a machine crash can lose them');
    else {
      unknown = true;
      problems.push(`cannot read the persistence settings (CONFIG GET is disabled on this server${appendonly === 'yes' ? '; AOF is on, its fsync policy unknown' : ''}): make sure AOF runs with appendfsync always, or set redis.waitReplicas`);
    }
    if (!unknown && waitReplicas === 0) problems.push('no replica acknowledgement either (redis.waitReplicas is 0): set appendonly yes and appendfsync always, or wait for replicas');
  }
  const ok = problems.length === 0;
  return { ok, status: ok ? 'ok' : unknown ? 'unknown' : 'unsafe', problems, settings: { appendonly, appendfsync, connectedReplicas } };
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
