import { describe, expect, it } from 'vitest';
import { decide, type MethodAvailability } from '../../src/policy/evaluate.js';
import { policySchema } from '../../src/policy/schema.js';
import type { DetectorHit } from '../../src/types.js';

type Facts = Parameters<typeof decide>[1]['facts'];
const facts = (over: Partial<Facts> & { hits?: DetectorHit[] } = {}): Facts => {
  const hits = over.hits ?? [];
  return {
    subject: over.subject ?? 'Appointment',
    headers: over.headers ?? {},
    size: over.size ?? 1000,
    detectors: over.detectors ?? { hits, score: hits.reduce((s, h) => s + h.score, 0), categories: [...new Set(hits.map((h) => h.category))] },
  };
};
const ssn: DetectorHit = { detector: 'ssn', category: 'phi', count: 1, score: 5 };
const dob: DetectorHit = { detector: 'dob', category: 'phi', count: 1, score: 3 };
const card: DetectorHit = { detector: 'card', category: 'pci', count: 1, score: 5 };
const tlsOnly: MethodAvailability = (m) => m === 'tls';
const all: MethodAvailability = () => true;

const base = policySchema.parse({});
const custom = policySchema.parse({
  consumerDomains: ['gmail.com'],
  domains: {
    'partner.org': { methods: ['tls'], tls: 'verify', onNoMethod: 'defer' },
    '*.health.example': { tls: 'mta-sts' },
    '*.east.health.example': { tls: 'encrypt' },
  },
  recipients: { 'Chief@Partner.org': { methods: ['pgp', 'tls'], onNoMethod: 'bounce' } },
  rules: [
    { id: 'board', match: { sender: 'board-*@client.test' }, action: { methods: ['portal'] } },
    { id: 'legal', match: { header: { name: 'X-Classification', pattern: '^confidential$' } }, action: { methods: ['smime', 'portal'] } },
    { id: 'cards', match: { detector: 'category:pci' }, action: { methods: ['portal'], onNoMethod: 'bounce' } },
    { id: 'big', match: { size: { min: '5MB' } }, action: { methods: ['portal'] } },
    { id: 'tagged', match: { subjectTag: true }, action: { methods: ['smime', 'pgp', 'portal'] } },
    { id: 'phi', match: { detectorScore: true }, action: { methods: ['smime', 'pgp', 'portal'] } },
    { id: 'consumer', match: { consumerDomain: true }, action: { methods: ['portal'] } },
  ],
});

describe('policy decisions (table)', () => {
  const cases: {
    name: string;
    policy?: typeof base;
    sender?: string;
    rcpt: string;
    facts: Facts;
    available?: MethodAvailability;
    expect: { ruleId: string; method?: string | undefined; candidates?: string[]; tls?: string; onNoMethod?: string; reason?: RegExp };
  }[] = [
    { name: 'default: verified TLS when no key is known', rcpt: 'a@clinic.test', facts: facts(), expect: { ruleId: 'default', method: 'tls', candidates: ['smime', 'pgp', 'tls', 'portal'], tls: 'verify' } },
    { name: 'default: S/MIME first when everything is possible', rcpt: 'a@clinic.test', facts: facts(), available: all, expect: { ruleId: 'default', method: 'smime' } },
    { name: '[secure] tag forces message-level protection', rcpt: 'a@clinic.test', facts: facts({ subject: 'Results [SECURE] inside' }), expect: { ruleId: 'secure-tag', method: undefined, candidates: ['smime', 'pgp', 'portal'], onNoMethod: 'portal', reason: /subject carries the \[secure\] tag/ } },
    { name: 'PHI above threshold forces message-level protection', rcpt: 'a@clinic.test', facts: facts({ hits: [ssn] }), expect: { ruleId: 'phi-detected', method: undefined, reason: /detector score 5 ≥ 5 \(ssn×1\)/ } },
    { name: 'PHI below threshold stays on TLS', rcpt: 'a@clinic.test', facts: facts({ hits: [dob] }), expect: { ruleId: 'default', method: 'tls' } },
    { name: 'consumer domain goes to message-level even with good TLS', rcpt: 'someone@gmail.com', facts: facts(), expect: { ruleId: 'consumer-mail', method: undefined } },
    { name: 'consumer domain: portal once it exists', rcpt: 'someone@gmail.com', facts: facts(), available: (m) => m === 'tls' || m === 'portal', expect: { ruleId: 'consumer-mail', method: 'portal' } },
    { name: 'domain layer', policy: custom, rcpt: 'x@partner.org', facts: facts(), expect: { ruleId: 'domain:partner.org', method: 'tls', candidates: ['tls'], onNoMethod: 'defer' } },
    { name: 'most specific wildcard domain layer', policy: custom, rcpt: 'x@a.east.health.example', facts: facts(), expect: { ruleId: 'domain:*.east.health.example', tls: 'encrypt' } },
    { name: 'wildcard domain layer', policy: custom, rcpt: 'x@west.health.example', facts: facts(), expect: { ruleId: 'domain:*.health.example', tls: 'mta-sts' } },
    { name: 'recipient layer over domain layer (case-insensitive)', policy: custom, rcpt: 'chief@partner.org', facts: facts(), expect: { ruleId: 'recipient:Chief@Partner.org', candidates: ['pgp', 'tls'], onNoMethod: 'bounce', tls: 'verify', method: 'tls' } },
    { name: 'rule over layers', policy: custom, rcpt: 'chief@partner.org', facts: facts({ subject: '[secure] x' }), expect: { ruleId: 'tagged', candidates: ['smime', 'pgp', 'portal'], onNoMethod: 'bounce', method: undefined } },
    { name: 'sender glob', policy: custom, sender: 'board-chair@client.test', rcpt: 'x@clinic.test', facts: facts(), expect: { ruleId: 'board', candidates: ['portal'] } },
    { name: 'sender glob does not match another sender', policy: custom, sender: 'boarding@client.test', rcpt: 'x@clinic.test', facts: facts(), expect: { ruleId: 'default' } },
    { name: 'header matcher', policy: custom, rcpt: 'x@clinic.test', facts: facts({ headers: { 'x-classification': ['Confidential'] } }), expect: { ruleId: 'legal', candidates: ['smime', 'portal'] } },
    { name: 'detector category matcher; first match wins over phi', policy: custom, rcpt: 'x@clinic.test', facts: facts({ hits: [card, ssn] }), expect: { ruleId: 'cards', onNoMethod: 'bounce' } },
    { name: 'size matcher', policy: custom, rcpt: 'x@clinic.test', facts: facts({ size: 6 * 1024 * 1024 }), expect: { ruleId: 'big' } },
    { name: 'consumer domain rule in custom policy', policy: custom, rcpt: 'x@GMAIL.com', facts: facts(), expect: { ruleId: 'consumer', candidates: ['portal'] } },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const [d] = decide(c.policy ?? base, { sender: c.sender ?? 'sender@client.test', recipients: [c.rcpt], facts: c.facts }, c.available ?? tlsOnly);
      expect(d).toMatchObject({ rcpt: c.rcpt, ruleId: c.expect.ruleId });
      if ('method' in c.expect) expect(d!.method).toBe(c.expect.method);
      if (c.expect.candidates) expect(d!.candidates).toEqual(c.expect.candidates);
      if (c.expect.tls) expect(d!.tls).toBe(c.expect.tls);
      if (c.expect.onNoMethod) expect(d!.onNoMethod).toBe(c.expect.onNoMethod);
      if (c.expect.reason) expect(d!.reasons.join(' | ')).toMatch(c.expect.reason);
    });
  }

  it('gives each recipient of one message its own decision', () => {
    const ds = decide(custom, { sender: 'a@client.test', recipients: ['x@partner.org', 'y@gmail.com', 'z@clinic.test'], facts: facts() }, tlsOnly);
    expect(ds.map((d) => [d.rcpt, d.ruleId, d.method])).toEqual([
      ['x@partner.org', 'domain:partner.org', 'tls'],
      ['y@gmail.com', 'consumer', undefined],
      ['z@clinic.test', 'default', 'tls'],
    ]);
  });

  it('says which methods were skipped and why nothing could be chosen', () => {
    const [d] = decide(base, { sender: 'a@client.test', recipients: ['p@gmail.com'], facts: facts() }, tlsOnly);
    expect(d!.reasons.join(' | ')).toMatch(/not possible now: smime, pgp, portal/);
    expect(d!.reasons.join(' | ')).toMatch(/no listed method is possible: portal/);
  });
});

describe('policy file validation', () => {
  it('names the key and the problem', () => {
    const r = policySchema.safeParse({ defaults: { methods: ['carrier-pigeon'] }, rules: [{ id: 'bad id!', match: { header: { name: 'x', pattern: '(' } }, action: {} }] });
    expect(r.success).toBe(false);
    const paths = r.success ? [] : r.error.issues.map((i) => i.path.join('.'));
    expect(paths).toContain('defaults.methods.0');
    expect(paths).toContain('rules.0.id');
    expect(paths).toContain('rules.0.match.header.0.pattern');
  });
});
