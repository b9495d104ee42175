import type { Redis } from 'ioredis';
import type { Envelope } from '../../types.js';
import { initialState, nextAttemptOf } from '../backend.js';
import { dueField } from './codec.js';
import type { RedisKeys } from './keys.js';
import { commitScript } from './scripts.js';
import type { RawSnapshot } from './snapshot.js';

export interface ReplicaWait {
  /** WAIT for this many replicas after each commit (0: don't). */
  replicas: number;
  timeoutMs: number;
}

/**
 * Makes a received message visible: one script renames the temp body into place and
 * writes envelope, initial state and due entry; it resolves once Redis acknowledged
 * (with appendfsync always, once the AOF is on disk). `deadline` (Redis clock, ms) is
 * when the client stops waiting for the answer: the script refuses to run later.
 */
export async function commitToRedis(redis: Redis, keys: RedisKeys, instanceId: string, envelope: Envelope, tmpMember: string, deadline?: number): Promise<RawSnapshot> {
  const { id } = envelope;
  const state = initialState(envelope, envelope.receivedAt);
  return (await commitScript.run(
    redis,
    [...keys.common(), keys.tmpPrefix + tmpMember, keys.body(id), keys.msg(id), keys.tmps],
    [keys.msgPrefix, JSON.stringify(envelope), JSON.stringify(state), dueField(nextAttemptOf(state)), envelope.receivedAt, id, envelope.size, tmpMember, keys.wake, instanceId, deadline === undefined ? '' : Math.ceil(deadline)],
  )) as RawSnapshot;
}

/**
 * With replicas configured, waits until they have the commit: WAIT covers every write
 * this connection made before it. Falling short throws, and the caller undoes the commit.
 */
export async function waitForReplicas(redis: Redis, wait: ReplicaWait, id: string): Promise<void> {
  if (wait.replicas <= 0) return;
  const acked = await redis.wait(wait.replicas, wait.timeoutMs);
  if (acked < wait.replicas) throw new Error(`queue: only ${acked} of ${wait.replicas} Redis replicas acknowledged message ${id} within ${wait.timeoutMs} ms`);
}
