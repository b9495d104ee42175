import { domainOf, mostSpecificMatch } from '../ingress/authorize.js';
import { comparableAddress } from './domain-key.js';
import type { Decision, MessageFacts, ProtectionMethod } from '../types.js';
import { matchRule, type MatchContext } from './match.js';
import type { Policy, PolicyAction } from './schema.js';

/** Which methods Postern can use for a recipient right now (keys known, features on). */
export type MethodAvailability = (method: ProtectionMethod, rcpt: string) => boolean;

/** Only verified-TLS style delivery exists so far; S/MIME, PGP and the portal follow. */
export const AVAILABLE_NOW: MethodAvailability = (method) => method === 'tls';

export interface DecideInput {
  sender: string;
  recipients: string[];
  facts: Pick<MessageFacts, 'subject' | 'headers' | 'detectors' | 'size' | 'unscanned'>;
}

/**
 * One Decision per recipient: defaults ← domain layer ← recipient layer ← the first rule
 * that matches. The chosen method is the first candidate that is available now; when
 * none is, `onNoMethod` says what happens, and the decision carries no method.
 */
export function decide(policy: Policy, input: DecideInput, available: MethodAvailability = AVAILABLE_NOW): Decision[] {
  return input.recipients.map((rcpt) => decideOne(policy, input, rcpt, available));
}

function decideOne(policy: Policy, input: DecideInput, rcpt: string, available: MethodAvailability): Decision {
  let action: Omit<Required<PolicyAction>, PortalSettings> & Pick<PolicyAction, PortalSettings> = { ...policy.defaults };
  let ruleId = 'default';
  const reasons: string[] = [];
  // The policy's keys are normalised at load (domain-key.ts); mostSpecificMatch puts the domain in that form.
  const domainKey = mostSpecificMatch(Object.keys(policy.domains), domainOf(rcpt));
  if (domainKey) {
    action = { ...action, ...definedOnly(policy.domains[domainKey]) };
    ruleId = `domain:${domainKey}`;
    reasons.push(`domain policy for ${domainKey}`);
  }
  const address = comparableAddress(rcpt);
  const rcptKey = Object.hasOwn(policy.recipients, address) ? address : undefined;
  if (rcptKey) {
    action = { ...action, ...definedOnly(policy.recipients[rcptKey]) };
    ruleId = `recipient:${rcptKey}`;
    reasons.push(`recipient policy for ${rcptKey}`);
  }
  const ctx: MatchContext = { sender: input.sender, rcpt, facts: input.facts, policy };
  for (const rule of policy.rules) {
    const why = matchRule(rule.match, ctx);
    if (!why) continue;
    action = { ...action, ...definedOnly(rule.action) };
    ruleId = rule.id;
    reasons.push(`rule ${rule.id}: ${why.join('; ') || 'matches'}`);
    break;
  }
  if (ruleId === 'default') reasons.push('no rule matched: default policy');
  const method = action.methods.find((m) => available(m, rcpt));
  const skipped = action.methods.slice(0, method ? action.methods.indexOf(method) : undefined).filter((m) => !available(m, rcpt));
  if (skipped.length) reasons.push(`not possible now: ${skipped.join(', ')}`);
  if (!method) reasons.push(`no listed method is possible: ${action.onNoMethod}`);
  return { rcpt, ruleId, reasons, candidates: action.methods, tls: action.tls, onNoMethod: action.onNoMethod, method, portalExpiryMs: action.portalExpiry, portalShowSubject: action.portalShowSubject, portalReadReceipts: action.portalReadReceipts };
}

/** Portal settings a layer or rule may leave unset (then the portal.* config applies). */
type PortalSettings = 'portalExpiry' | 'portalShowSubject' | 'portalReadReceipts';

function definedOnly(action: PolicyAction | undefined): Partial<PolicyAction> {
  const out: Partial<PolicyAction> = {};
  if (action?.methods) out.methods = action.methods;
  if (action?.tls) out.tls = action.tls;
  if (action?.onNoMethod) out.onNoMethod = action.onNoMethod;
  if (action?.portalExpiry) out.portalExpiry = action.portalExpiry;
  if (action?.portalShowSubject !== undefined) out.portalShowSubject = action.portalShowSubject;
  if (action?.portalReadReceipts !== undefined) out.portalReadReceipts = action.portalReadReceipts;
  return out;
}
