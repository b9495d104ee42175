import { domainMatches, domainOf } from '../ingress/authorize.js';
import { comparableDomain } from '../common/domain-name.js';
import { comparableAddress } from './domain-key.js';
import type { MessageFacts } from '../types.js';
import type { Policy, PolicyMatch } from './schema.js';

/** What a rule can look at for one recipient. */
export interface MatchContext {
  sender: string;
  rcpt: string;
  facts: Pick<MessageFacts, 'subject' | 'headers' | 'detectors' | 'size' | 'unscanned'>;
  policy: Policy;
}

/**
 * "*" matches any run of characters; everything else literally, case-insensitively.
 * Matched by hand, not as a RegExp: "*a*a*a*b" as /^.*a.*a.*a.*b$/ backtracks
 * polynomially on a long address a sender chooses. Here a mismatch only moves the
 * last star on, so the work is at most pattern × text characters.
 */
export function globMatches(pattern: string, text: string): boolean {
  const p = pattern.toLowerCase();
  const t = text.toLowerCase();
  let pi = 0;
  let ti = 0;
  let star = -1; // the last star seen, and where in the text its run ends so far
  let starEnd = 0;
  while (ti < t.length) {
    if (p[pi] === '*') {
      star = pi++;
      starEnd = ti;
    } else if (pi < p.length && p[pi] === t[ti]) {
      pi++;
      ti++;
    } else if (star >= 0) {
      pi = star + 1;
      ti = ++starEnd;
    } else return false;
  }
  while (p[pi] === '*') pi++;
  return pi === p.length;
}

export function hasSubjectTag(subject: string, tag: string): boolean {
  return subject.toLowerCase().includes(tag.toLowerCase());
}

type HeaderMatch = NonNullable<PolicyMatch['header']>[number];

/**
 * A header condition does not depend on the recipient: its answer is kept per message
 * (per headers object), so a long header is read once per condition, not once per
 * recipient.
 */
const headerAnswers = new WeakMap<MessageFacts['headers'], Map<HeaderMatch, boolean>>();

function headerMatches(h: HeaderMatch, headers: MessageFacts['headers']): boolean {
  let answers = headerAnswers.get(headers);
  if (!answers) headerAnswers.set(headers, (answers = new Map()));
  let answer = answers.get(h);
  if (answer === undefined) answers.set(h, (answer = (headers[h.name] ?? []).some((v) => h.pattern.test(v))));
  return answer;
}

/**
 * Whether every condition of a rule holds (lists mean any-of). Returns the reasons, for
 * "why was this sent this way?", or undefined when the rule does not match.
 */
export function matchRule(match: PolicyMatch, ctx: MatchContext): string[] | undefined {
  const reasons: string[] = [];
  const { facts, policy } = ctx;
  // Domain patterns are normalised at load (domain-key.ts); the addresses' domains here.
  const rcptDomain = comparableDomain(domainOf(ctx.rcpt));
  const senderDomain = comparableDomain(domainOf(ctx.sender));
  // Globs are normalised at load too (normalizeAddressGlob); the addresses here.
  if (match.sender) {
    const sender = comparableAddress(ctx.sender);
    if (!match.sender.some((p) => globMatches(p, sender))) return undefined;
    reasons.push(`sender ${ctx.sender} matches`);
  }
  if (match.senderDomain) {
    if (!match.senderDomain.some((p) => domainMatches(p, senderDomain))) return undefined;
    reasons.push(`sender domain ${senderDomain} matches`);
  }
  if (match.recipient) {
    const rcpt = comparableAddress(ctx.rcpt);
    if (!match.recipient.some((p) => globMatches(p, rcpt))) return undefined;
    reasons.push(`recipient ${ctx.rcpt} matches`);
  }
  if (match.recipientDomain) {
    if (!match.recipientDomain.some((p) => domainMatches(p, rcptDomain))) return undefined;
    reasons.push(`recipient domain ${rcptDomain} matches`);
  }
  if (match.consumerDomain !== undefined) {
    const consumer = policy.consumerDomains.includes(rcptDomain);
    if (consumer !== match.consumerDomain) return undefined;
    reasons.push(consumer ? `recipient domain ${rcptDomain} is a consumer mail domain` : `recipient domain ${rcptDomain} is not a consumer mail domain`);
  }
  if (match.subjectTag !== undefined) {
    const tagged = hasSubjectTag(facts.subject, policy.subjectTag.tag);
    if (tagged !== match.subjectTag) return undefined;
    reasons.push(tagged ? `subject carries the ${policy.subjectTag.tag} tag` : `subject has no ${policy.subjectTag.tag} tag`);
  }
  if (match.header) {
    const hit = match.header.find((h) => headerMatches(h, facts.headers));
    if (!hit) return undefined;
    reasons.push(`header ${hit.name} matches ${hit.pattern.source}`);
  }
  if (match.detector) {
    const found = facts.detectors.hits.filter((h) => match.detector?.some((d) => d === h.detector || d === `category:${h.category}`));
    if (!found.length) return undefined;
    reasons.push(`detectors found ${found.map((h) => `${h.detector}×${h.count}`).join(', ')}`);
  }
  if (match.detectorScore !== undefined) {
    const threshold = match.detectorScore === true ? policy.phiThreshold : match.detectorScore;
    // Text the detectors did not scan may hold anything: it counts as a score at any threshold.
    if (facts.detectors.score < threshold && !facts.unscanned) return undefined;
    const summary = facts.detectors.hits.map((h) => `${h.detector}×${h.count}`).join(', ');
    reasons.push(facts.detectors.score >= threshold ? `detector score ${facts.detectors.score} ≥ ${threshold}${summary ? ` (${summary})` : ''}` : `part of the text was not scanned (${facts.unscanned}), so it may hold PHI`);
  }
  if (match.size) {
    if (match.size.min !== undefined && facts.size < match.size.min) return undefined;
    if (match.size.max !== undefined && facts.size > match.size.max) return undefined;
    reasons.push(`size ${facts.size} bytes is in range`);
  }
  return reasons;
}
