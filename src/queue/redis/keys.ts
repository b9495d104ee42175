/**
 * Where the Redis queue keeps what, every key under the configured prefix (so several
 * deployments, or test runs, can share one Redis and be removed by prefix):
 *
 *   <p>q:msg:<id>             HASH  envelope (JSON), state (JSON), due (nextAttemptAt, '' when
 *                                   none pending), owner + token while leased
 *   <p>q:body:<id>            STRING the committed body
 *   <p>q:due                  ZSET  id → nextAttemptAt of messages waiting (not leased)
 *   <p>q:leases               ZSET  id → lease deadline (Redis clock, ms) of leased messages
 *   <p>q:received             ZSET  id → receivedAt of every committed message (depth, oldest)
 *   <p>q:tmp:<instance>:<id>  STRING a body being received, with an expiry as a backstop
 *   <p>q:tmps                 SET   "<instance>:<id>" of every temp body: the intent record that
 *                                   every heartbeat (and open()) cleans by reference
 *   <p>q:inst:<instance>      STRING present (with an expiry) while that instance is alive
 *   <p>q:fence                counter: lease tokens, so a stale holder can be told apart
 *   <p>q:version              counter: bumped by every change, orders cached snapshots
 *   <p>q:wake                 pub/sub channel: "something became due" across instances
 *
 * The scripts compute message keys from ids, so this layout is for a standalone Redis
 * (with or without replicas), not Redis Cluster.
 */
export class RedisKeys {
  readonly due: string;
  readonly leases: string;
  readonly received: string;
  readonly tmps: string;
  readonly fence: string;
  readonly version: string;
  readonly wake: string;
  readonly msgPrefix: string;
  readonly bodyPrefix: string;
  readonly tmpPrefix: string;
  readonly instPrefix: string;

  constructor(readonly prefix: string) {
    const q = `${prefix}q:`;
    this.due = `${q}due`;
    this.leases = `${q}leases`;
    this.received = `${q}received`;
    this.tmps = `${q}tmps`;
    this.fence = `${q}fence`;
    this.version = `${q}version`;
    this.wake = `${q}wake`;
    this.msgPrefix = `${q}msg:`;
    this.bodyPrefix = `${q}body:`;
    this.tmpPrefix = `${q}tmp:`;
    this.instPrefix = `${q}inst:`;
  }

  msg(id: string): string {
    return this.msgPrefix + id;
  }

  body(id: string): string {
    return this.bodyPrefix + id;
  }

  /** The temp-body registry member; the temp key is tmpPrefix + member. */
  tmpMember(instance: string, id: string): string {
    return `${instance}:${id}`;
  }

  tmp(instance: string, id: string): string {
    return this.tmpPrefix + this.tmpMember(instance, id);
  }

  instance(instance: string): string {
    return this.instPrefix + instance;
  }

  /** The keys every script receives first, in this order (see PREAMBLE in scripts.ts). */
  common(): string[] {
    return [this.due, this.leases, this.received, this.version];
  }
}
