import type { Readable } from 'node:stream';
import type { TlsLevel } from '../config/schema.js';
import { EVENTS, type Logger } from '../events/logger.js';
import { mxMatchesPolicy, type MtaSts, type MtaStsLookup } from '../tls/mta-sts.js';
import type { TlsInfo } from '../tls/verdict.js';
import type { Envelope } from '../types.js';
import { classifyReply } from './classify.js';
import { localOutcomes, type Outcome } from './outcome.js';
import { ConnectError, type ConnectionPool } from './pool.js';
import { RouteError, type Route, type Router } from './router.js';
import { attemptTls } from './tls-level.js';
import { sendTransaction } from './transaction.js';

/** Addresses tried per attempt across all MX hosts, as Postfix's smtp_mx_address_limit. */
const MAX_ADDRESSES_PER_ATTEMPT = 5;

/** One variant's final message and how it goes out. */
export interface Outgoing {
  domain: string;
  rcpts: string[];
  /** The least TLS the policy accepts for these recipients; raises the route's level (see tls-level.ts). */
  minTls: TlsLevel;
  requireMtaSts: boolean;
  /** Opens the message as it goes out; called once per address tried. */
  open(): Promise<Buffer | Readable>;
  size: number;
  eightBit: boolean;
}

/**
 * Delivers one variant to one recipient domain: route (transport map or MX), MTA-STS,
 * the TLS level, then the next hop's addresses in order over pooled connections. Any
 * SMTP reply is final for this attempt; a connection lost mid-transaction is worth
 * another address.
 */
export class DomainSender {
  constructor(
    private readonly router: Router,
    private readonly pool: ConnectionPool,
    private readonly log: Logger,
    private readonly mtaSts?: MtaSts,
  ) {}

  async send(envelope: Envelope, out: Outgoing): Promise<Outcome[]> {
    const { domain, rcpts } = out;
    let route: Route;
    try {
      route = await this.router.route(domain);
    } catch (err) {
      if (!(err instanceof RouteError)) throw err;
      return localOutcomes(rcpts, { result: err.permanent ? 'bounce' : 'defer', status: err.status, response: err.message, category: 'routing' });
    }
    const chosen = attemptTls(envelope.origin, route.tls, out.minTls);
    let level = chosen.level;
    if (chosen.relaxed) this.log.info({ event: EVENTS.tlsNoticeLevel, queueId: envelope.id, domain, level, routeTls: route.tls, reason: chosen.relaxed }, 'portal notice: TLS level of its own decision');
    // MTA-STS applies to MX delivery (not to a configured smart host).
    const sts: MtaStsLookup | undefined = this.mtaSts && route.source !== 'transport' ? await this.mtaSts.policyFor(domain) : undefined;
    if (sts?.failure) this.logStsFailure(envelope, domain, sts);
    const stsMode = sts?.policy?.mode;
    const stsTag = stsMode === 'enforce' || stsMode === 'testing' ? `mta-sts-${stsMode}` : undefined;
    // Where the level comes from, on every outcome: the domain's MTA-STS policy, else the
    // decision when it moved the route's level (settle.ts names its rule), else the route.
    const policy = stsTag ?? (level !== route.tls ? DECISION_TLS : route.tlsFrom);
    const tlsOf = (o: Partial<TlsInfo> = {}) => ({ verified: false, ...o, level, policy, stsFailure: sts?.failure });
    const held = (category: string, response: string): Outcome[] => localOutcomes(rcpts, { result: 'defer', status: '4.7.5', response, category, route: route.source, tls: tlsOf() });
    if (out.requireMtaSts && stsMode !== 'enforce') {
      const why = sts?.failure ? `${sts.failure}${sts.detail ? ` (${sts.detail})` : ''}` : 'no MTA-STS policy in enforce mode';
      return held(`tls:${sts?.failure ?? 'no-mta-sts-policy'}`, `policy requires MTA-STS for ${domain}: ${why}`);
    }
    let hops = route.hops;
    if (sts?.policy && stsMode !== 'none') {
      const allowed = hops.filter((h) => mxMatchesPolicy(h.name, sts.policy as { mx: string[] }));
      if (stsMode === 'enforce') {
        // The recipient domain's own demand (RFC 8461): it binds notices too.
        level = 'verify';
        if (!allowed.length) return held('tls:validation-failure', `no MX of ${domain} (${hops.map((h) => h.name).join(', ')}) is allowed by its MTA-STS policy (mx: ${sts.policy.mx.join(', ')}); nothing sent`);
        hops = allowed;
      } else if (allowed.length < hops.length) {
        this.log.warn({ event: EVENTS.mtaStsTesting, queueId: envelope.id, domain, result: 'validation-failure', mx: hops.filter((h) => !allowed.includes(h)).map((h) => h.name), policyMx: sts.policy.mx }, 'MTA-STS testing mode: MX not in policy (delivering anyway)');
      }
    }
    let last = localOutcomes(rcpts, { result: 'defer', status: '4.4.1', response: `no address to try for ${domain}`, category: 'routing', route: route.source, tls: tlsOf() });
    let tried = 0;
    for (const hop of hops) {
      for (const address of hop.addresses) {
        if (tried++ >= MAX_ADDRESSES_PER_ATTEMPT) return last;
        const relay = `${hop.name}[${address}]:${hop.port}`;
        const foreseen = this.pool.capabilities.foreseesFailure(hop.name, hop.port, level);
        if (foreseen && this.log.isLevelEnabled('info')) {
          // A forecast only: hosts fix their TLS, so the attempt is still made.
          this.log.info({ event: EVENTS.tlsForeseen, queueId: envelope.id, relay, level, lastSeen: foreseen }, 'TLS capability cache foresees a failure at this level');
        }
        let pc;
        try {
          pc = await this.pool.acquire({ address, port: hop.port, name: hop.name, tls: level });
        } catch (err) {
          if (!(err instanceof ConnectError)) throw err;
          const tlsProblem = Boolean(err.tlsFailure);
          last = localOutcomes(rcpts, {
            result: 'defer',
            // 4.7.5 cryptographic failure, 4.4.1 no answer from host (RFC 3463).
            status: tlsProblem ? '4.7.5' : '4.4.1',
            response: err.response ? `${err.message}: ${err.response}` : err.message,
            category: tlsProblem ? `tls:${err.tlsFailure}` : 'connection',
            relay,
            remoteMta: hop.name,
            tls: tlsOf(err.tls ?? { failure: err.tlsFailure }),
            route: route.source,
          });
          continue;
        }
        let body: Buffer | Readable;
        try {
          body = await out.open();
        } catch (err) {
          // The queue could not give the body (Redis down, message deleted). Nothing was
          // sent on the connection, so it goes back as it is: kept busy, it would count
          // against maxConnectionsPerHost for good and block this next hop.
          this.pool.release(pc, true);
          throw err;
        }
        const result = await sendTransaction(pc, { from: envelope.mailFrom, to: rcpts, size: out.size, eightBit: out.eightBit, body });
        this.pool.release(pc, result.reusable);
        if (stsMode === 'testing' && !pc.tls.verified) {
          // RFC 8461 §5: in testing mode a failure is reported, and the mail still goes.
          this.log.warn({ event: EVENTS.mtaStsTesting, queueId: envelope.id, domain, relay, result: pc.tls.failure ?? 'starttls-not-supported', detail: pc.tls.detail }, 'MTA-STS testing mode: TLS not verified (delivering anyway)');
        }
        const common = { relay, remoteMta: hop.name, tls: tlsOf(pc.tls), conn: pc.id, connectMs: pc.connectMs, transmitMs: result.transmitMs, route: route.source };
        last = result.replies.map((reply): Outcome => {
          if (reply.ok) return { rcpt: reply.rcpt, result: 'delivered', status: '2.0.0', response: reply.response, category: 'sent', diagnosticType: 'smtp', ...common };
          if (reply.local === 'network') return { rcpt: reply.rcpt, result: 'defer', status: '4.4.2', response: reply.response, category: 'connection', diagnosticType: 'x-postern', ...common };
          const c = classifyReply(reply.response);
          return { rcpt: reply.rcpt, result: c.action, status: c.status, response: c.response, category: c.category, diagnosticType: reply.local ? 'x-postern' : 'smtp', ...common };
        });
        if (!result.replies.every((r) => r.local === 'network')) return last;
      }
    }
    return last;
  }

  /**
   * An MTA-STS discovery or fetch that failed, with the RFC 8460 result type (the
   * delivery line carries the type too): without a cached policy the domain is treated
   * as having none, with one that policy still applies.
   */
  private logStsFailure(envelope: Envelope, domain: string, sts: MtaStsLookup): void {
    const cached = sts.source === 'cache-after-failure';
    this.log.warn(
      { event: EVENTS.mtaStsFailure, queueId: envelope.id, domain, result: sts.failure, detail: sts.detail, policySource: sts.source, policyId: sts.policy?.id, mode: sts.policy?.mode },
      cached ? 'MTA-STS policy could not be refreshed: the cached policy applies' : 'MTA-STS policy could not be discovered or fetched: delivering as without one',
    );
  }
}

/** tls.policy of an attempt whose level the decision set; settle.ts writes it as "rule:<rule id>". */
export const DECISION_TLS = 'decision';

/** The delivery line's tls.policy: where the attempt's TLS level came from. */
export function tlsPolicyLabel(policy: string | undefined, ruleId: string | undefined): string | undefined {
  return policy === DECISION_TLS ? `rule:${ruleId ?? 'unknown'}` : policy;
}
