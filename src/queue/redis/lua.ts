import { createHash } from 'node:crypto';
import type { ChainableCommander, Redis } from 'ioredis';
import { LeaseLostError, NoMessageError, QueueRefusal } from '../errors.js';

/**
 * A Lua script run with EVALSHA, falling back to EVAL when the server does not have it
 * cached yet (first use, or after a restart / SCRIPT FLUSH). A script runs atomically:
 * no other client's command interleaves, which is what makes lease, commit and the
 * fencing checks race-free across instances.
 */
export class LuaScript {
  private readonly sha: string;

  constructor(
    readonly name: string,
    private readonly source: string,
  ) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  async run(redis: Redis, keys: string[], args: (string | number)[]): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!/NOSCRIPT/.test((err as Error).message)) throw translate(err);
      return redis.eval(this.source, keys.length, ...keys, ...args).catch((e: unknown) => {
        throw translate(e);
      });
    }
  }
}

/**
 * Redis answered the script with an error reply: our scripts check everything before
 * they write, so nothing of the operation happened (unlike a lost connection, after which
 * it may or may not have). The refusals are shared with the file spool (../errors.ts).
 */
export { QueueRefusal as ScriptRefusal, LeaseLostError, NoMessageError } from '../errors.js';

/** Error replies become ScriptRefusals; their first word names the reason. */
function translate(err: unknown): unknown {
  if ((err as Error).name !== 'ReplyError') return err;
  const message = (err as Error).message ?? '';
  const m = /^(LEASELOST|NOMSG) (.*)$/s.exec(message);
  if (m?.[1] === 'LEASELOST') return new LeaseLostError(`queue: ${m[2]}`);
  if (m?.[1] === 'NOMSG') return new NoMessageError(`queue: ${m[2]}`);
  return new QueueRefusal(message.replace(/^ERR /, ''));
}

/** Runs a MULTI and returns its replies, throwing the first command error (exec() reports them per command). */
export async function execTransaction(tx: ChainableCommander): Promise<unknown[]> {
  const results = await tx.exec();
  const failed = results?.find(([err]) => err);
  if (!results || failed) throw failed?.[0] ?? new Error('queue: Redis transaction was discarded');
  return results.map(([, value]) => value);
}
