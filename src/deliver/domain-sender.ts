import { isIP } from 'node:net';
import type { Readable } from 'node:stream';
import type { TlsLevel } from '../config/schema.js';
import { EVENTS, type Logger } from '../events/logger.js';
import { mxMatchesPolicy, type MtaSts, type MtaStsLookup } from '../tls/mta-sts.js';
import type { TlsInfo } from '../tls/verdict.js';
import type { Envelope } from '../types.js';
import { classifyReply } from './classify.js';
import { openedWithHeaderFacts, type OpenedMessage } from './header-section.js';
import { localOutcomes, type Outcome } from './outcome.js';
import { ConnectError, type ConnectionPool } from './pool.js';
import { finalReplies, sendInBatches } from './recipient-batches.js';
import { RouteError, type NextHop, type Route, type Router } from './router.js';
import type { Utf8Decision } from './smtputf8.js';
import { attemptTls } from './tls-level.js';
import { sendTransaction, type RecipientReply, type TransactionResult } from './transaction.js';

/** Addresses tried per attempt across all MX hosts, as Postfix's smtp_mx_address_limit. */
const MAX_ADDRESSES_PER_ATTEMPT = 5;

/** One address of a next hop, in the order the route gives. */
interface Candidate {
  hop: NextHop;
  address: string;
}

/** What one address did for one recipient, and whether the next address may still take it. */
interface AddressResult {
  outcome: Outcome;
  tryNext: boolean;
}

/** What every address of one attempt shares. */
interface AttemptContext {
  envelope: Envelope;
  out: Outgoing;
  route: Route;
  level: TlsLevel;
  stsMode: string | undefined;
  tlsOf: (o?: Partial<TlsInfo>) => Outcome['tls'];
}

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
 * Delivers one variant to one recipient domain: route (transport map, address literal or
 * MX), MTA-STS, the TLS level, then the next hop's addresses in order over pooled
 * connections, up to MAX_ADDRESSES_PER_ATTEMPT. A recipient that got a 2xx or 5xx reply
 * is settled for this attempt; one that got a 4xx, or no reply (no connection, TLS
 * failure, connection lost), is tried at the next address, and the last address's answer
 * is its outcome. No reply after the whole message went is the exception: it waits for
 * the next attempt, as the server may have taken the message.
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
    if (chosen.relaxed) this.log.info({ event: EVENTS.tlsNoticeLevel, queueId: envelope.id, domain, tlsLevel: level, routeTls: route.tls, reason: chosen.relaxed }, 'portal notice: TLS level of its own decision');
    // MTA-STS applies to MX delivery (not to a configured smart host, nor to an address
    // literal, which has no domain to publish a policy). It is looked up by the route's
    // domain: the A-label form DNS and RFC 8461 use, whichever form the envelope carried.
    const sts: MtaStsLookup | undefined = this.mtaSts && (route.source === 'mx' || route.source === 'implicit-mx') ? await this.mtaSts.policyFor(route.domain) : undefined;
    if (sts?.failure) this.logStsFailure(envelope, domain, sts);
    const stsMode = sts?.policy?.mode;
    const stsTag = stsMode === 'enforce' || stsMode === 'testing' ? `mta-sts-${stsMode}` : undefined;
    // Where the level comes from, on every outcome: the domain's MTA-STS policy, else the
    // decision when it moved the route's level (settle.ts names its rule), else the route.
    const policy = stsTag ?? (level !== route.tls ? DECISION_TLS : route.tlsFrom);
    const tlsOf = (o: Partial<TlsInfo> = {}) => ({ verified: false, ...o, level, policy, stsFailure: sts?.failure });
    const held = (category: string, response: string): Outcome[] => localOutcomes(rcpts, { result: 'defer', status: '4.7.5', response, category, route: route.source, tls: tlsOf() });
    if (out.requireMtaSts && stsMode !== 'enforce') return held(`tls:${sts?.failure ?? 'no-mta-sts-policy'}`, `policy requires MTA-STS for ${domain}: ${noMtaSts(route, sts)}`);
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
    const ctx: AttemptContext = { envelope, out, route, level, stsMode, tlsOf };
    const candidates = addressesToTry(hops);
    const settled: Outcome[] = [];
    // The recipients still open and what the last host tried said about each.
    let open = localOutcomes(rcpts, { result: 'defer', status: '4.4.1', response: `no address to try for ${domain}`, category: 'routing', route: route.source, tls: tlsOf() });
    for (const [i, candidate] of candidates.entries()) {
      let results: AddressResult[];
      try {
        results = await this.tryAddress(ctx, candidate, open.map((o) => o.rcpt));
      } catch (err) {
        if (!settled.length) throw err;
        // The body could not be opened for this address (Redis down, the message removed).
        // What earlier addresses settled stands: thrown, the whole attempt was deferred,
        // and recipients an earlier address had taken were sent the message again.
        const response = `message could not be opened for the next address: ${(err as Error).message}`;
        this.log.error({ event: EVENTS.deliveryError, queueId: envelope.id, to: open.map((o) => o.rcpt), relay: relayOf(candidate), err: (err as Error).message }, 'message could not be opened for the next address; the recipients it had are deferred');
        return [...settled, ...localOutcomes(open.map((o) => o.rcpt), { result: 'defer', status: '4.3.0', response, category: 'internal', route: route.source, tls: tlsOf() })];
      }
      settled.push(...results.filter((r) => !r.tryNext).map((r) => r.outcome));
      open = results.filter((r) => r.tryNext).map((r) => r.outcome);
      if (!open.length) break;
      const next = candidates[i + 1];
      if (next) this.logNextAddress(envelope, open, relayOf(next));
    }
    return [...settled, ...open];
  }

  /**
   * One address of the route for the recipients still open. A connection that cannot be
   * set up, one lost mid-transaction and a 4xx reply leave a recipient to the next
   * address (RFC 5321 §5.1: each address in turn until one succeeds; Postfix does the
   * same); a 2xx or 5xx reply settles it for this attempt, and so does a connection lost
   * after the whole message went (the server may have it). The recipients go in as many
   * transactions on the connection as delivery.maxRecipientsPerTransaction needs
   * (recipient-batches.ts).
   */
  private async tryAddress(ctx: AttemptContext, { hop, address }: Candidate, rcpts: string[]): Promise<AddressResult[]> {
    const { envelope, out, route, level, stsMode, tlsOf } = ctx;
    const relay = relayOf({ hop, address });
    const foreseen = this.pool.capabilities.foreseesFailure(hop.name, hop.port, level);
    if (foreseen && this.log.isLevelEnabled('info')) {
      // A forecast only: hosts fix their TLS, so the attempt is still made.
      this.log.info({ event: EVENTS.tlsForeseen, queueId: envelope.id, relay, tlsLevel: level, lastSeen: foreseen }, 'TLS capability cache foresees a failure at this level');
    }
    let pc;
    try {
      pc = await this.pool.acquire({ address, port: hop.port, name: hop.name, tls: level });
    } catch (err) {
      if (!(err instanceof ConnectError)) throw err;
      const tlsProblem = Boolean(err.tlsFailure);
      // A reply (a refusing greeting, STARTTLS refused) or a TLS exchange means a server
      // answered; a refused or timed-out connection names no Remote-MTA in a report.
      const answered = Boolean(err.response || err.tlsFailure);
      const outcomes = localOutcomes(rcpts, {
        result: 'defer',
        // 4.7.5 cryptographic failure, 4.4.1 no answer from host (RFC 3463).
        status: tlsProblem ? '4.7.5' : '4.4.1',
        response: err.response ? `${err.message}: ${err.response}` : err.message,
        category: tlsProblem ? `tls:${err.tlsFailure}` : 'connection',
        relay,
        remoteMta: answered ? remoteMtaName(hop.name) : undefined,
        tls: tlsOf(err.tls ?? { failure: err.tlsFailure }),
        route: route.source,
      });
      return outcomes.map((outcome) => ({ outcome, tryNext: true }));
    }
    let first: OpenedMessage | undefined;
    try {
      // Its header section is looked at before MAIL FROM: it can need SMTPUTF8.
      first = await openedWithHeaderFacts(await out.open());
    } catch (err) {
      // The queue could not give the body (Redis down, message deleted). Nothing was
      // sent on the connection, so it goes back as it is: kept busy, it would count
      // against maxConnectionsPerHost for good and block this next hop.
      this.pool.release(pc, true);
      throw err;
    }
    const connection = pc; // narrowed, for the closure
    // One transaction; a further one (more recipients than one may carry) opens the message again.
    const send = async (to: string[]): Promise<TransactionResult> => {
      let message = first;
      first = undefined;
      if (!message) {
        try {
          message = await openedWithHeaderFacts(await out.open());
        } catch (err) {
          // Recipients of earlier transactions are settled already; throwing would lose that.
          const response = `message could not be opened for a further transaction: ${(err as Error).message}`;
          return { replies: to.map((rcpt) => ({ rcpt, ok: false, response, local: 'internal' })), reusable: true, transmitMs: 0 };
        }
      }
      const result = await sendTransaction(connection, { from: envelope.mailFrom, to, size: out.size, eightBit: out.eightBit, body: message.body, smtpUtf8: envelope.smtpUtf8, utf8Header: message.utf8Header });
      if (result.smtputf8) this.logSmtpUtf8(envelope, to, relay, result.smtputf8, message.utf8Header);
      return result;
    };
    const batches = await sendInBatches(pc, rcpts, send);
    this.pool.release(pc, batches[batches.length - 1]?.result.reusable ?? true);
    if (stsMode === 'testing' && !pc.tls.verified) {
      // RFC 8461 §5: in testing mode a failure is reported, and the mail still goes.
      this.log.warn({ event: EVENTS.mtaStsTesting, queueId: envelope.id, domain: out.domain, relay, result: pc.tls.failure ?? 'starttls-not-supported', detail: pc.tls.detail }, 'MTA-STS testing mode: TLS not verified (delivering anyway)');
    }
    const common = { relay, remoteMta: remoteMtaName(hop.name), tls: tlsOf(pc.tls), conn: pc.id, connectMs: pc.connectMs, route: route.source };
    return finalReplies(batches).map(({ reply, result }) => replyResult(reply, { ...common, transmitMs: result.transmitMs }));
  }

  /**
   * Every host tried shows in the log: one that left recipients to the next address
   * here, the one whose answer counts in the delivery line (settle.ts).
   */
  private logNextAddress(envelope: Envelope, left: Outcome[], next: string): void {
    if (!this.log.isLevelEnabled('info')) return;
    for (const o of left) {
      const tls = o.tls && { level: o.tls.level, version: o.tls.version, cipher: o.tls.cipher, verified: o.tls.verified, failure: o.tls.failure, detail: o.tls.detail };
      this.log.info(
        { event: EVENTS.deliveryNextAddress, queueId: envelope.id, to: o.rcpt, relay: o.relay, route: o.route, conn: o.conn, tls, dsn: o.status, category: o.category, response: o.response, next },
        'not taken at this address: trying the next one',
      );
    }
  }

  /**
   * What was decided about SMTPUTF8 (smtputf8.ts), when the client asked for it or the
   * message has UTF-8 in it: with the parameter (debug, as it should be), without it (info:
   * UTF-8 or the client's request went to a next hop that does not offer the extension) or
   * refused (warn; the recipients' delivery.bounced follows, 5.6.7).
   */
  private logSmtpUtf8(envelope: Envelope, rcpts: string[], relay: string, d: Utf8Decision, utf8Header: boolean): void {
    const level = d.action === 'refuse' ? 'warn' : d.action === 'without' ? 'info' : 'debug';
    if (!this.log.isLevelEnabled(level)) return;
    const text = {
      smtputf8: 'sent with SMTPUTF8',
      without: d.reason === 'not-needed' ? 'next hop does not offer SMTPUTF8; the client asked for it but the message does not need it: sent without' : 'next hop does not offer SMTPUTF8; the client did not ask for it: sent as received, UTF-8 header fields and all',
      refuse: 'next hop does not offer SMTPUTF8, which the message needs: not sent (5.6.7)',
    }[d.action];
    this.log[level]({ event: EVENTS.deliverySmtpUtf8, queueId: envelope.id, to: rcpts, relay, decision: d.action, reason: d.reason, requested: envelope.smtpUtf8, utf8Header }, text);
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

/** The route's addresses in order, host by host, within the per-attempt limit. */
function addressesToTry(hops: NextHop[]): Candidate[] {
  return hops.flatMap((hop) => hop.addresses.map((address) => ({ hop, address }))).slice(0, MAX_ADDRESSES_PER_ATTEMPT);
}

/** The delivery line's relay: name[address]:port. */
function relayOf({ hop, address }: Candidate): string {
  return `${hop.name}[${address}]:${hop.port}`;
}

/**
 * The Remote-MTA a report names, written "dns; <name>": a host name only (RFC 3464
 * §2.3.5), so none for a next hop given as an IP address (a route, an address literal).
 */
function remoteMtaName(hopName: string): string | undefined {
  return isIP(hopName) ? undefined : hopName;
}

/** A recipient's reply at one address: a 4xx leaves it to the next address, a 2xx or 5xx settles it. */
function replyResult(reply: RecipientReply, common: Omit<Outcome, 'rcpt' | 'result' | 'status' | 'response' | 'category' | 'diagnosticType'>): AddressResult {
  if (reply.ok) return { outcome: { rcpt: reply.rcpt, result: 'delivered', status: '2.0.0', response: reply.response, category: 'sent', diagnosticType: 'smtp', ...common }, tryNext: false };
  if (reply.local === 'network') return { outcome: { rcpt: reply.rcpt, result: 'defer', status: '4.4.2', response: reply.response, category: 'connection', diagnosticType: 'x-postern', ...common }, tryNext: true };
  // The server may have the message: another host now would make a second copy at once
  // (RFC 5321 §4.5.3.2.6). The next attempt sends it again, here or elsewhere.
  if (reply.local === 'after-dot') return { outcome: { rcpt: reply.rcpt, result: 'defer', status: '4.4.2', response: reply.response, category: 'after-dot', diagnosticType: 'x-postern', ...common }, tryNext: false };
  if (reply.local === 'internal') return { outcome: { rcpt: reply.rcpt, result: 'defer', status: '4.3.0', response: reply.response, category: 'internal', diagnosticType: 'x-postern', ...common }, tryNext: false };
  const c = classifyReply(reply.response);
  const outcome: Outcome = { rcpt: reply.rcpt, result: c.action, status: c.status, response: c.response, category: c.category, diagnosticType: reply.local ? 'x-postern' : 'smtp', ...common };
  // By the reply's code, not by how it is retried: a 5xx the rules defer (greylisting
  // dressed as 5xx, a full mailbox) waits for the next attempt, as any 5xx ends here.
  const temporary = !reply.local && c.code !== undefined && c.code >= 400 && c.code < 500;
  return { outcome, tryNext: temporary };
}

/**
 * Why a decision requiring MTA-STS cannot have it on this route. MTA-STS validates the
 * recipient domain's own MX hosts: a transport route (delivery.routes) or an address
 * literal bypasses them, so the domain's policy, published or not, never applies there.
 */
function noMtaSts(route: Route, sts: MtaStsLookup | undefined): string {
  if (route.source === 'transport') return `MTA-STS does not apply to a transport route (delivery.routes "${route.routeKey ?? route.domain}" sends ${route.domain} to ${route.hops.map((h) => `${h.name}:${h.port}`).join(', ')}, not to its MX hosts)`;
  if (route.source === 'address-literal') return 'MTA-STS does not apply to an address literal (there is no domain to publish a policy)';
  return sts?.failure ? `${sts.failure}${sts.detail ? ` (${sts.detail})` : ''}` : 'no MTA-STS policy in enforce mode';
}
