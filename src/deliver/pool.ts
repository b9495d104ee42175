import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { rootCertificates, type TLSSocket } from 'node:tls';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import type { SharedCache } from '../common/shared-cache.js';
import type { PosternConfig, TlsLevel } from '../config/schema.js';
import { EVENTS, type Logger } from '../events/logger.js';
import { applyDataStreamFastPath } from './nodemailer-patches.js';
import { applySmtpUtf8Param } from './smtputf8-param.js';
import { TlsCapabilityCache } from '../tls/capability-cache.js';
import { meetsLevel, tlsVerdict, type TlsInfo, type TlsResultType } from '../tls/verdict.js';

export interface Target {
  address: string;
  port: number;
  /** Host name for SNI, certificate matching and logs. */
  name: string;
  tls: TlsLevel;
}

/** A connection that could not be set up; `tlsFailure` set when TLS was the reason. */
export class ConnectError extends Error {
  constructor(
    message: string,
    readonly response?: string | undefined,
    readonly tlsFailure?: TlsResultType | undefined,
    readonly tls?: TlsInfo | undefined,
  ) {
    super(message);
    this.name = 'ConnectError';
  }
}

/** What the transactions on a pooled connection may take (delivery.*). */
export interface ConnectionLimits {
  /** delivery.timeouts.socket: inactivity at any other time. */
  socketTimeout: number;
  /** delivery.timeouts.dataDone: the wait for the reply to the end of the message. */
  dataDoneTimeout: number;
  /** delivery.maxRecipientsPerTransaction. */
  maxRecipientsPerTransaction: number;
}

export class PooledConnection {
  messages = 0;
  busy = true;
  closed = false;
  idleTimer: NodeJS.Timeout | undefined;
  readonly openedAt = Date.now();
  constructor(
    readonly id: number,
    readonly key: string,
    readonly target: Target,
    readonly conn: SMTPConnection,
    readonly tls: TlsInfo,
    readonly connectMs: number,
    readonly limits: ConnectionLimits,
  ) {}

  supports(extension: string): boolean {
    const list = (this.conn as unknown as { _supportedExtensions?: string[] })._supportedExtensions ?? [];
    return list.includes(extension);
  }

  /**
   * The whole message has been written: from here to its reply the wait is
   * delivery.timeouts.dataDone (RFC 5321 §4.5.3.2.6: 10 minutes, because the server may
   * be scanning or storing it, and giving up too early makes duplicates). nodemailer has
   * one inactivity timeout for the whole session, set on its socket; it is set back with
   * awaitingDataDone(false) once the reply is in.
   */
  awaitingDataDone(waiting: boolean): void {
    if (this.closed) return;
    const socket = (this.conn as unknown as { _socket?: { destroyed?: boolean; setTimeout(ms: number): unknown } })._socket;
    if (socket && !socket.destroyed) socket.setTimeout(waiting ? this.limits.dataDoneTimeout : this.limits.socketTimeout);
  }

  /**
   * RSET (RFC 5321 §4.1.1.5): ends whatever a refused transaction left open, so another
   * can follow on this connection. False when the connection is gone or the server
   * refused; nodemailer answers a reset only with a reply, so the end of the connection
   * is watched as well.
   */
  reset(): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        this.conn.removeListener('end', gone);
        resolve(ok);
      };
      const gone = () => done(false);
      this.conn.once('end', gone);
      try {
        this.conn.reset((err) => done(!err && !this.closed));
      } catch {
        done(false);
      }
    });
  }
}

interface HostSlot {
  connections: PooledConnection[];
  opening: number;
  waiters: ((c: PooledConnection | undefined) => void)[];
}

/**
 * Outbound SMTP connections, pooled per next hop + TLS level + server name so a
 * connection verified for one name is never reused for another. The pool never retries
 * or re-queues: a failed connection is reported to the caller, and the durable queue
 * decides what happens to the message.
 */
export class ConnectionPool {
  private readonly slots = new Map<string, HostSlot>();
  private readonly ca: string[];
  private nextId = 1;
  /** What each host offered last time (see TlsCapabilityCache). */
  readonly capabilities: TlsCapabilityCache;
  private closing = false;

  constructor(
    private readonly config: PosternConfig,
    private readonly log: Logger,
    sharedCache?: SharedCache,
  ) {
    this.capabilities = new TlsCapabilityCache(undefined, undefined, sharedCache);
    applyDataStreamFastPath();
    applySmtpUtf8Param();
    const extra = config.delivery.tls.trust.map((file) => readFileSync(file, 'utf8'));
    this.ca = [...rootCertificates, ...extra];
  }

  async acquire(target: Target): Promise<PooledConnection> {
    const key = `${target.address}:${target.port}|${target.tls}|${target.name}`;
    const slot = this.slots.get(key) ?? { connections: [], opening: 0, waiters: [] };
    this.slots.set(key, slot);
    const idle = slot.connections.find((c) => !c.busy && !c.closed);
    if (idle) {
      clearTimeout(idle.idleTimer);
      idle.busy = true;
      return idle;
    }
    const { maxConnectionsPerHost } = this.config.delivery.pool;
    if (slot.connections.length + slot.opening >= maxConnectionsPerHost) {
      const handed = await new Promise<PooledConnection | undefined>((resolve) => slot.waiters.push(resolve));
      if (handed) return handed;
    }
    slot.opening++;
    try {
      const pc = await this.open(key, target);
      slot.connections.push(pc);
      return pc;
    } catch (err) {
      // The place this open held is free again: one waiter tries for itself, or it
      // would wait for a release that may never come (every open to a dead host fails).
      slot.waiters.shift()?.(undefined);
      throw err;
    } finally {
      slot.opening--;
    }
  }

  /** Returns a connection; a broken or used-up one is closed and its slot handed on. */
  release(pc: PooledConnection, reusable: boolean): void {
    const slot = this.slots.get(pc.key);
    pc.busy = false;
    const { maxMessagesPerConnection, idleTimeout } = this.config.delivery.pool;
    if (!reusable || pc.closed || this.closing || pc.messages >= maxMessagesPerConnection) {
      this.retire(pc, reusable ? 'used-up' : 'error');
    } else if (slot?.waiters.length) {
      pc.busy = true;
      slot.waiters.shift()?.(pc);
      return;
    } else {
      pc.idleTimer = setTimeout(() => this.retire(pc, 'idle'), idleTimeout);
      pc.idleTimer.unref();
    }
    // A slot freed by retiring lets one waiter open a fresh connection.
    if (slot && pc.closed) slot.waiters.shift()?.(undefined);
  }

  async closeAll(): Promise<void> {
    this.closing = true;
    for (const slot of this.slots.values()) {
      for (const w of slot.waiters.splice(0)) w(undefined);
      for (const c of [...slot.connections]) if (!c.busy) this.retire(c, 'shutdown');
    }
  }

  private retire(pc: PooledConnection, reason: string): void {
    clearTimeout(pc.idleTimer);
    const slot = this.slots.get(pc.key);
    // Retired once: the remote's end of a connection we closed (QUIT at shutdown, after
    // the idle timeout) comes here again, and would log a second "connection closed".
    if (!slot?.connections.includes(pc)) return;
    slot.connections = slot.connections.filter((c) => c !== pc);
    if (!slot.connections.length && !slot.opening && !slot.waiters.length) this.slots.delete(pc.key);
    if (!pc.closed) {
      pc.closed = true;
      try {
        pc.conn.quit();
      } catch {
        pc.conn.close();
      }
    }
    this.log.info(
      { event: EVENTS.deliveryConnection, conn: pc.id, relay: `${pc.target.name}[${pc.target.address}]:${pc.target.port}`, messages: pc.messages, reason, ageMs: Date.now() - pc.openedAt },
      'connection closed',
    );
  }

  private async open(key: string, target: Target, plaintextFallback = false): Promise<PooledConnection> {
    const { delivery, hostname } = this.config;
    const level = plaintextFallback ? 'none' : target.tls;
    const started = Date.now();
    const conn = new SMTPConnection({
      host: target.address,
      port: target.port,
      name: hostname,
      // SNI carries host names only (RFC 6066 §3); a route to an IP literal sends none.
      ...(isIP(target.name) ? {} : { servername: target.name }),
      connectionTimeout: delivery.timeouts.connect,
      greetingTimeout: delivery.timeouts.greeting,
      socketTimeout: delivery.timeouts.socket,
      ignoreTLS: level === 'none',
      opportunisticTLS: level === 'may',
      requireTLS: level === 'encrypt' || level === 'verify',
      // Verification is decided in tlsVerdict() after the handshake, so its reason can be
      // logged at every level; `verify` refuses before any mail command is sent.
      tls: { rejectUnauthorized: false, minVersion: level === 'may' ? 'TLSv1' : 'TLSv1.2', ca: this.ca, ...(isIP(target.name) ? {} : { servername: target.name }) },
      logger: false,
    } as ConstructorParameters<typeof SMTPConnection>[0]);
    // An 'error' event nobody listens to ends the process. Failures reach the caller
    // through connect() below, the send callback and the pooled connection's own
    // listener; this one only keeps a late error (a reset after our QUIT, a timeout on a
    // connection being given up) from being one nobody listens to.
    conn.on('error', () => undefined);
    try {
      await new Promise<void>((resolve, reject) => {
        conn.once('error', reject);
        // A host that closes before its greeting is reported here, not as an 'error'.
        conn.connect((err?: Error) => {
          conn.removeListener('error', reject);
          if (err) reject(err);
          else resolve();
        });
      });
    } catch (err) {
      const upgrading = (conn as unknown as { upgrading?: boolean }).upgrading === true;
      conn.close();
      const e = err as { code?: string; originalCode?: string; command?: string; response?: string; message: string };
      if (e.code === 'ETLS' && e.command === 'STARTTLS' && e.response) {
        this.capabilities.record(target.name, target.port, { starttls: false, verdict: 'starttls-not-supported' });
        throw new ConnectError(`STARTTLS not offered or refused by ${target.name}`, e.response, 'starttls-not-supported');
      }
      if (e.code === 'ETLS' || handshakeFailed(e, upgrading)) {
        // The handshake itself failed. Under `may`, Postfix-style, plaintext is acceptable.
        // Recorded, so decisions foresee it as they foresee a certificate that fails.
        this.capabilities.record(target.name, target.port, { starttls: true, verdict: 'validation-failure' });
        if (level === 'may') return this.open(key, target, true);
        throw new ConnectError(`TLS handshake with ${target.name} failed: ${e.message}`, undefined, 'validation-failure');
      }
      throw new ConnectError(e.message, e.response);
    }
    const tls = tlsVerdict(conn.secure ? ((conn as unknown as { _socket: TLSSocket })._socket ?? undefined) : undefined, target.name);
    if (tls.version) this.capabilities.record(target.name, target.port, { starttls: true, verdict: tls.verified ? 'verified' : (tls.failure ?? 'unverified'), protocol: tls.version });
    else if (level !== 'none') this.capabilities.record(target.name, target.port, { starttls: false, verdict: 'starttls-not-supported' });
    if (!meetsLevel(level, tls)) {
      conn.quit();
      const failure = tls.failure ?? 'validation-failure';
      throw new ConnectError(`TLS level ${level} not met by ${target.name}: ${failure}${tls.detail ? ` (${tls.detail})` : ''}`, undefined, failure, tls);
    }
    const limits = { socketTimeout: delivery.timeouts.socket, dataDoneTimeout: delivery.timeouts.dataDone, maxRecipientsPerTransaction: delivery.maxRecipientsPerTransaction };
    const pc = new PooledConnection(this.nextId++, key, target, conn, tls, Date.now() - started, limits);
    conn.on('error', () => {
      pc.closed = true;
    });
    conn.on('end', () => {
      pc.closed = true;
      if (!pc.busy) this.retire(pc, 'remote-closed');
    });
    return pc;
  }
}

/**
 * A TLS handshake that failed after STARTTLS was accepted. nodemailer reports it as ETLS
 * only when the server closes mid-handshake; an alert from the server (no common
 * protocol version: an old appliance speaking TLS 1.0/1.1, no common cipher) or from our
 * side (a legacy signature algorithm) comes as a socket error (ESOCKET) raised while the
 * connection is upgrading, with OpenSSL's code kept as originalCode. Taken for a plain
 * connection failure, `may` never fell back to plaintext (the mail bounced after the
 * lifetime) and `encrypt`/`verify` logged 4.4.1 instead of a TLS failure.
 */
function handshakeFailed(e: { code?: string; originalCode?: string }, upgrading: boolean): boolean {
  return e.code === 'ESOCKET' && (upgrading || /^ERR_SSL_/.test(e.originalCode ?? ''));
}
