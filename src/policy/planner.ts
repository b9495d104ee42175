import type { TlsLevel } from '../config/schema.js';
import { EVENTS, type Logger } from '../events/logger.js';
import type { DetectorsConfig } from '../inspect/detectors/index.js';
import type { ForecastFn } from '../tls/forecast.js';
import type { QueueBackend } from '../queue/backend.js';
import type { Decision, DeliveryState, Envelope, RecipientState, RequiredTls } from '../types.js';
import { chooseMethod } from './availability.js';
import { decideWithKeys, type KeyFinder } from './decide-with-keys.js';
import { AVAILABLE_NOW, type MethodAvailability } from './evaluate.js';
import { applyTlsForecast, withForecastReason } from './forecast-step.js';
import { inspectForPolicy } from './inspect-step.js';
import { findRecipientKeys, type GroupKey, type KeyFinding } from './recipient-keys.js';
import type { PolicyStore } from './store.js';

export type { GroupKey } from './recipient-keys.js';

export interface PlannerOptions {
  /** Which of tls / portal are possible for a recipient (pgp and smime: a key is found). */
  available?: MethodAvailability;
  /** Secure Text recipients: the portal only. */
  isSms?: (rcpt: string) => boolean;
  keys?: KeyFinding['keys'];
  smimeMaxSize?: number;
  pgpMaxSize?: number;
  /** The TLS capability cache's forecast (tls/forecast.ts): a reason, or the fallback at once. */
  forecast?: ForecastFn | undefined;
}

/**
 * Recipients that go out together: same method, same key, same TLS floor, same body.
 * (The worker splits a group by recipient domain: one variant per next hop.)
 */
export interface SendGroup {
  method: 'tls' | 'pgp' | 'smime';
  rcpts: string[];
  /** pgp / smime: the key every recipient of the group is encrypted to. */
  key?: GroupKey | undefined;
  /** The least TLS the policy accepts for these recipients. */
  minTls: TlsLevel;
  /** Whether only an MTA-STS-validated session will do. */
  requireMtaSts: boolean;
  stripSubjectTag: boolean;
}

/** Recipients that cannot go now, and what happens to them instead. */
export interface Held {
  rcpt: string;
  result: 'defer' | 'bounce';
  status: string;
  reason: string;
  category: string;
  /** For the delivery line when the recipient has no decision (an inspection that failed). */
  rule?: string | undefined;
  method?: string | undefined;
}

/** The rule id on the lines of a message that could not be inspected (policy.onInspectError). */
export const INSPECT_ERROR_RULE = 'inspect-error';

export interface Plan {
  /** Recipients sent by SMTP: in clear over TLS, or encrypted (pgp, smime). */
  groups: SendGroup[];
  /** Recipients whose method is the portal. */
  portal: string[];
  held: Held[];
}

/** Decisions for messages Postern wrote itself: they carry no PHI, or must go verified. */
const OWN_MESSAGES: Partial<Record<NonNullable<Envelope['origin']>, Pick<Decision, 'ruleId' | 'candidates' | 'tls' | 'onNoMethod' | 'reasons'>>> = {
  'portal-notice': { ruleId: 'portal-notice', candidates: ['tls'], tls: 'may', onNoMethod: 'defer', reasons: ['a portal notice carries a link, never content'] },
  'portal-reply': { ruleId: 'portal-reply', candidates: ['tls'], tls: 'verify', onNoMethod: 'defer', reasons: ['a reply written in the portal goes to the original sender over verified TLS'] },
  'portal-receipt': { ruleId: 'portal-receipt', candidates: ['tls'], tls: 'verify', onNoMethod: 'defer', reasons: ['a read receipt says who opened a secure message: verified TLS to the sender'] },
  // A report about a message that was sent protected (bounce.ts sentProtected), like a
  // receipt: it names the recipients and returns the original's header fields (its subject
  // withheld), and its own fixed Subject never matches a tag rule, so the sender domain's
  // policy (tls: may) would decide it. Verified TLS or nothing: deferred, and at the end of
  // the lifetime dropped (a report is never reported on: dsn.suppressed). A report about an
  // unprotected message ('dsn') is inspected and decided by the policy like any message.
  'dsn-protected': { ruleId: 'dsn-protected', candidates: ['tls'], tls: 'verify', onNoMethod: 'defer', reasons: ['a bounce report about a message sent protected names its recipients: verified TLS to the sender'] },
};

const TLS_FOR: Record<RequiredTls, TlsLevel> = { may: 'may', encrypt: 'encrypt', verify: 'verify', 'mta-sts': 'verify' };

/**
 * Inspect and decide, once per message: the facts are gathered the first time any
 * recipient needs a decision, and each decision is kept with the recipient's state so
 * every later attempt follows the same decision (and can explain it).
 */
export class Planner {
  private readonly available: MethodAvailability;
  private readonly smsRecipient: (rcpt: string) => boolean;

  constructor(
    private readonly queue: QueueBackend,
    private readonly policies: PolicyStore,
    private readonly detectors: () => DetectorsConfig,
    private readonly log: Logger,
    private readonly options: PlannerOptions = {},
  ) {
    this.available = options.available ?? AVAILABLE_NOW;
    this.smsRecipient = options.isSms ?? (() => false);
  }

  /** The tag the policy removes from subjects. */
  subjectTag(): string {
    return this.policies.current().subjectTag.tag;
  }

  async plan(envelope: Envelope, state: DeliveryState, due: RecipientState[]): Promise<Plan> {
    const policy = this.policies.current();
    const undecided = due.filter((r) => !r.decision);
    const own = envelope.origin ? OWN_MESSAGES[envelope.origin] : undefined;
    if (own) for (const r of undecided) r.decision = { rcpt: r.rcpt, ...own, method: 'tls' };
    const facts = !own && undecided.length ? await inspectForPolicy({ queue: this.queue, detectors: this.detectors(), subjectTag: policy.subjectTag.tag, log: this.log }, envelope, state) : undefined;
    const input = facts && !facts.error ? { sender: envelope.mailFrom, recipients: undecided.map((r) => r.rcpt), facts } : undefined;
    const decided = due.flatMap((r) => (r.decision ? [{ rcpt: r.rcpt, candidates: r.decision.candidates }] : []));
    const { decisions, available, found } = await decideWithKeys(policy, input, { keyless: this.available, decided, find: this.keyFinder(envelope) });
    decisions.forEach((d, i) => void ((undecided[i] as RecipientState).decision = d));
    const plan: Plan = { groups: [], portal: [], held: [] };
    // One forecast per domain and level in an attempt.
    const forecasts = new Map<string, ReturnType<ForecastFn>>();
    const ask = this.options.forecast;
    const forecast: ForecastFn | undefined = ask && ((domain, level) => forecasts.get(`${level}|${domain}`) ?? forecasts.set(`${level}|${domain}`, ask(domain, level)).get(`${level}|${domain}`)!);
    const groups = new Map<string, SendGroup>();
    const strip = Boolean(state.inspection?.subjectTagged && policy.subjectTag.remove);
    for (const r of due) {
      const d = r.decision;
      if (!d) {
        // Only an inspection failure leaves a recipient without a decision. One that ran
        // out of time may be the gateway's load, not the message: tried again later (the
        // next attempt inspects it again), whatever onInspectError says; the lifetime
        // still ends it.
        const bounce = policy.onInspectError === 'bounce' && !state.inspection?.timedOut;
        plan.held.push({ rcpt: r.rcpt, result: bounce ? 'bounce' : 'defer', status: bounce ? '5.6.0' : '4.6.0', reason: `message could not be inspected: ${state.inspection?.error ?? 'unknown error'}`, category: 'inspect', rule: INSPECT_ERROR_RULE, method: 'none' });
        continue;
      }
      const chosen = chooseMethod(d, available, this.smsRecipient);
      const f = await applyTlsForecast(d, chosen.method, available, forecast);
      const method = f.method;
      // As policy explain says it: why the method is not simply the first possible candidate.
      const reasons = withForecastReason(chosen.why && !d.reasons.includes(chosen.why) ? [...d.reasons, chosen.why] : d.reasons, f.why);
      if (f.switched) this.log.info({ event: EVENTS.tlsForeseen, queueId: envelope.id, to: r.rcpt, rule: d.ruleId, tls: d.tls, forecast: f.forecast, method }, `TLS capability cache: every MX fails ${d.tls}; ${method} instead`);
      if (method === 'portal') {
        r.decision = { ...d, method, key: undefined, reasons };
        plan.portal.push(r.rcpt);
        continue;
      }
      if (method === 'tls' || method === 'pgp' || method === 'smime') {
        const key = method === 'tls' ? undefined : found.get(r.rcpt)?.[method];
        r.decision = { ...d, method, reasons, key: key && { kind: method as 'pgp' | 'smime', id: key.id, source: key.source } };
        const id = `${method}|${key?.id ?? ''}|${d.tls}|${strip}`;
        const g = groups.get(id) ?? { method, key, rcpts: [], minTls: TLS_FOR[d.tls], requireMtaSts: d.tls === 'mta-sts', stripSubjectTag: strip };
        g.rcpts.push(r.rcpt);
        groups.set(id, g);
        continue;
      }
      r.decision = { ...d, method, reasons };
      const wanted = d.candidates.join(', ');
      if (method) {
        plan.held.push({ rcpt: r.rcpt, result: 'defer', status: '4.7.10', reason: `policy ${d.ruleId} chose ${method}, which this release cannot do yet; held (never sent with less protection)`, category: 'policy' });
      } else if (d.onNoMethod === 'bounce') {
        plan.held.push({ rcpt: r.rcpt, result: 'bounce', status: '5.7.10', reason: `policy ${d.ruleId} requires ${wanted} and none is possible`, category: 'policy' });
      } else {
        const via = d.onNoMethod === 'portal' ? ' (and the portal cannot serve this recipient)' : '';
        plan.held.push({ rcpt: r.rcpt, result: 'defer', status: '4.7.10', reason: `policy ${d.ruleId} requires ${wanted}; none is possible now${via}`, category: 'policy' });
      }
    }
    plan.groups = [...groups.values()];
    if (!own) this.logDecisions(envelope, undecided, plan);
    return plan;
  }

  /** policy.decision for the recipients decided in this attempt, with the method they really get. */
  private logDecisions(envelope: Envelope, decidedNow: RecipientState[], plan: Plan): void {
    if (!this.log.isLevelEnabled('info')) return;
    for (const r of decidedNow) {
      const d = r.decision;
      if (!d) continue;
      const held = plan.held.find((h) => h.rcpt === r.rcpt);
      const method = held ? undefined : d.method;
      this.log.info({ event: EVENTS.decided, queueId: envelope.id, to: d.rcpt, rule: d.ruleId, method, candidates: d.candidates, tls: d.tls, onNoMethod: d.onNoMethod, held: held?.result, reasons: d.reasons }, 'decision');
    }
  }

  /** Keys are looked up for relayed messages only (Postern's own have no keys to find). */
  private keyFinder(envelope: Envelope): KeyFinder | undefined {
    const keys = this.options.keys;
    if (envelope.origin || !keys) return undefined;
    return (wanted) => findRecipientKeys({ keys, smimeMaxSize: this.options.smimeMaxSize ?? Infinity, pgpMaxSize: this.options.pgpMaxSize, isSms: this.smsRecipient, log: this.log }, envelope, wanted);
  }
}
