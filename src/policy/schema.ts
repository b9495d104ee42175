import { z } from 'zod';
import { parseDuration, parseSize } from '../config/units.js';
import { detectorsConfigSchema } from '../inspect/detectors/config.js';
import { compileUserPattern } from '../inspect/detectors/user-pattern.js';
import { unknownDetectorNames } from './detector-names.js';
import { DOMAIN_PATTERN_HELP, normalizeAddressGlob, normalizeAddressKey, normalizeDomainPattern } from './domain-key.js';

export const METHODS = ['smime', 'pgp', 'tls', 'portal'] as const;
export const TLS_REQUIREMENTS = ['may', 'encrypt', 'verify', 'mta-sts'] as const;

/** One value or a list of them; errors keep the path of the item at fault. */
const listOf = <T extends z.ZodType>(item: T) => z.preprocess((v) => (Array.isArray(v) || v === undefined ? v : [v]), z.array(item));

const size = z.union([z.number().int().nonnegative(), z.string()]).transform((v, ctx) => {
  const bytes = typeof v === 'number' ? v : parseSize(v);
  if (bytes === undefined) {
    ctx.addIssue({ code: 'custom', message: `"${v}" is not a size (e.g. 10MB)` });
    return z.NEVER;
  }
  return bytes;
});

/** A domain pattern, normalised (lower case, IDN in ASCII); a malformed one is refused. */
const domainPattern = z.string().transform((v, ctx) => {
  const normalized = normalizeDomainPattern(v);
  if (normalized === undefined) {
    ctx.addIssue({ code: 'custom', message: `"${v}" is not a domain pattern: ${DOMAIN_PATTERN_HELP}` });
    return z.NEVER;
  }
  return normalized;
});

/**
 * A map keyed by domain patterns or addresses: keys normalised as the policy compares
 * them (so "Partner.ORG" applies to mail for partner.org), a malformed key or two keys
 * that become one refused, naming the key.
 */
function keyedBy<T extends z.ZodType>(normalize: (key: string) => string | undefined, what: string, value: T) {
  return z.record(z.string(), value).transform((record, ctx) => {
    const out: Record<string, z.output<T>> = {};
    const original: Record<string, string> = {};
    for (const [key, v] of Object.entries(record) as [string, z.output<T>][]) {
      const normalized = normalize(key);
      if (normalized === undefined) ctx.addIssue({ code: 'custom', path: [key], message: `"${key}" is not ${what}` });
      else if (original[normalized] !== undefined) ctx.addIssue({ code: 'custom', path: [key], message: `"${key}" and "${original[normalized]}" are the same (${normalized}): keep one` });
      else {
        original[normalized] = key;
        out[normalized] = v;
      }
    }
    return out;
  });
}

/** A header pattern (case-insensitive), compiled for RE2: time linear in the header (user-pattern.ts). */
const regex = z.string().max(500, 'patterns longer than 500 characters are refused').transform((v, ctx) => {
  const compiled = compileUserPattern(v, 'i');
  if (typeof compiled === 'string') {
    ctx.addIssue({ code: 'custom', message: compiled });
    return z.NEVER;
  }
  return compiled;
});

/** What a rule, layer or the defaults say about a recipient; later layers override. */
export const actionSchema = z.strictObject({
  /** Methods in order of preference. */
  methods: z.array(z.enum(METHODS)).min(1).optional(),
  /** TLS required when the method is `tls`. */
  tls: z.enum(TLS_REQUIREMENTS).optional(),
  /** When none of the methods is possible. */
  onNoMethod: z.enum(['portal', 'defer', 'bounce']).optional(),
  /** How long a portal copy stays readable (default: portal.expiry). */
  portalExpiry: z.union([z.number().int().positive(), z.string()]).transform((v, ctx) => {
    const ms = typeof v === 'number' ? v : parseDuration(v);
    if (ms === undefined) {
      ctx.addIssue({ code: 'custom', message: `"${v}" is not a duration (e.g. 7d)` });
      return z.NEVER;
    }
    return ms;
  }).optional(),
  /** Portal: show the original subject in this recipient's notice (default: portal.showSubject). */
  portalShowSubject: z.boolean().optional(),
  /** Portal: tell the sender when this recipient first opens it (default: portal.readReceipts). */
  portalReadReceipts: z.boolean().optional(),
});

export const matchSchema = z.strictObject({
  sender: listOf(z.string().transform(normalizeAddressGlob)).optional(),
  senderDomain: listOf(domainPattern).optional(),
  recipient: listOf(z.string().transform(normalizeAddressGlob)).optional(),
  recipientDomain: listOf(domainPattern).optional(),
  /** The recipient's domain is in `consumerDomains`. */
  consumerDomain: z.boolean().optional(),
  /** The subject carries `subjectTag.tag`. */
  subjectTag: z.boolean().optional(),
  header: listOf(z.strictObject({ name: z.string().transform((v) => v.toLowerCase()), pattern: regex })).optional(),
  /**
   * Any of these detectors (names, or "category:<c>") found something. Names are checked
   * against the detectors of the same policy once it is read (detector-names.ts).
   */
  detector: listOf(z.string()).optional(),
  /** The detectors' total score is at least this (true = at least `phiThreshold`). */
  detectorScore: z.union([z.literal(true), z.number().nonnegative()]).optional(),
  size: z.strictObject({ min: size.optional(), max: size.optional() }).optional(),
});

export const ruleSchema = z.strictObject({
  id: z.string().regex(/^[\w.-]+$/, 'use letters, digits, dot, dash or underscore'),
  description: z.string().optional(),
  match: matchSchema,
  action: actionSchema,
});

const defaultRules: z.input<typeof ruleSchema>[] = [
  {
    id: 'secure-tag',
    description: 'The sender asked for protection: TLS alone is not enough',
    match: { subjectTag: true },
    action: { methods: ['smime', 'pgp', 'portal'], onNoMethod: 'portal' },
  },
  {
    id: 'phi-detected',
    description: 'Protected health information above the threshold: message-level protection',
    match: { detectorScore: true },
    action: { methods: ['smime', 'pgp', 'portal'], onNoMethod: 'portal' },
  },
  {
    id: 'consumer-mail',
    description: 'Consumer mailboxes get the portal even when their TLS is fine',
    match: { consumerDomain: true },
    action: { methods: ['smime', 'pgp', 'portal'], onNoMethod: 'portal' },
  },
];

/**
 * The policy file. With nothing in it, this is the safe default for healthcare:
 * message-level encryption when a key is known, else verified TLS, else the portal;
 * the [secure] tag, PHI above the threshold and consumer mail domains demand
 * message-level protection (S/MIME, PGP or the portal).
 */
export const policySchema = z.strictObject({
  subjectTag: z
    .strictObject({
      tag: z.string().min(1).default('[secure]'),
      /** Remove the tag from the subject before delivery. */
      remove: z.boolean().default(true),
    })
    .prefault({}),
  /** Detector score at which `detectorScore: true` matches. */
  phiThreshold: z.number().nonnegative().default(5),
  consumerDomains: z
    .array(domainPattern.refine((d) => !d.includes('*'), { message: 'a domain, not a pattern' }))
    .default(['gmail.com', 'googlemail.com', 'yahoo.com', 'outlook.com', 'hotmail.com', 'live.com', 'msn.com', 'icloud.com', 'me.com', 'aol.com', 'proton.me', 'protonmail.com', 'gmx.com', 'gmx.net', 'mail.com', 'yandex.com', 'zoho.com']),
  defaults: z
    .strictObject({
      methods: z.array(z.enum(METHODS)).min(1).default(['smime', 'pgp', 'tls', 'portal']),
      tls: z.enum(TLS_REQUIREMENTS).default('verify'),
      onNoMethod: z.enum(['portal', 'defer', 'bounce']).default('portal'),
      portalExpiry: actionSchema.shape.portalExpiry,
      portalShowSubject: actionSchema.shape.portalShowSubject,
      portalReadReceipts: actionSchema.shape.portalReadReceipts,
    })
    .prefault({}),
  /** Per-domain layer: exact, "*.parent" (most specific wins) or "*"; any case, IDN or punycode. */
  domains: keyedBy(normalizeDomainPattern, `a domain pattern: ${DOMAIN_PATTERN_HELP}`, actionSchema).default({}),
  /** Per-recipient layer, by exact address (case-insensitive). */
  recipients: keyedBy(normalizeAddressKey, 'an email address (local-part@domain)', actionSchema).default({}),
  /** Triggers, in order; the first that matches applies on top of the layers. */
  rules: z.array(ruleSchema).prefault(defaultRules),
  /** What to do with a message that cannot be inspected within the limits. */
  onInspectError: z.enum(['bounce', 'defer']).default('bounce'),
  /** PHI/DLP detector settings (see README). */
  detectors: detectorsConfigSchema.prefault({}),
}).superRefine((policy, ctx) => {
  // A rule's detector names depend on the detectors this policy defines (custom, keywords).
  for (const p of unknownDetectorNames(policy.rules, policy.detectors)) ctx.addIssue({ code: 'custom', path: ['rules', p.rule, 'match', 'detector', p.item], message: p.message });
});

export type Policy = z.output<typeof policySchema>;
export type PolicyRule = Policy['rules'][number];
export type PolicyAction = z.output<typeof actionSchema>;
export type PolicyMatch = z.output<typeof matchSchema>;
