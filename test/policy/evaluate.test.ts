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
    { id: 'vip-glob', match: { recipient: 'ceo-*@*.bank.example' }, action: { methods: ['smime', 'portal'] } },
    { id: 'from-labs', match: { senderDomain: '*.Labs.example', recipientDomain: ['*.clinic.example', 'Clinic.Example'] }, action: { tls: 'mta-sts' } },
    { id: 'dob-only', match: { detector: 'dob' }, action: { onNoMethod: 'defer' } },
    { id: 'score-7', match: { detectorScore: 7 }, action: { methods: ['portal'] } },
    { id: 'small-internal', match: { recipientDomain: 'internal.example', size: { max: '1KB' } }, action: { tls: 'may' } },
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
    { name: 'recipient layer over domain layer (case-insensitive)', policy: custom, rcpt: 'chief@partner.org', facts: facts(), expect: { ruleId: 'recipient:chief@partner.org', candidates: ['pgp', 'tls'], onNoMethod: 'bounce', tls: 'verify', method: 'tls' } },
    { name: 'recipient layer, address in another case', policy: custom, rcpt: 'CHIEF@partner.ORG', facts: facts(), expect: { ruleId: 'recipient:chief@partner.org', candidates: ['pgp', 'tls'] } },
    { name: 'recipient glob', policy: custom, rcpt: 'CEO-Jane@ny.bank.example', facts: facts(), expect: { ruleId: 'vip-glob', candidates: ['smime', 'portal'], reason: /recipient CEO-Jane@ny.bank.example matches/ } },
    { name: 'recipient glob: the domain part must match too', policy: custom, rcpt: 'ceo-jane@bank.example', facts: facts(), expect: { ruleId: 'default' } },
    { name: 'senderDomain and recipientDomain wildcards (any case in the file)', policy: custom, sender: 'lab@eu.labs.example', rcpt: 'dr@north.clinic.example', facts: facts(), expect: { ruleId: 'from-labs', tls: 'mta-sts', reason: /sender domain eu.labs.example matches; recipient domain north.clinic.example matches/ } },
    { name: 'recipientDomain exact entry of the same rule', policy: custom, sender: 'lab@eu.labs.example', rcpt: 'dr@clinic.example', facts: facts(), expect: { ruleId: 'from-labs' } },
    { name: '"*.labs.example" is for subdomains only', policy: custom, sender: 'lab@labs.example', rcpt: 'dr@clinic.example', facts: facts(), expect: { ruleId: 'default' } },
    { name: 'detector by name', policy: custom, rcpt: 'x@clinic.test', facts: facts({ hits: [dob] }), expect: { ruleId: 'dob-only', onNoMethod: 'defer', reason: /detectors found dob×1/ } },
    { name: 'numeric detectorScore: below', policy: custom, rcpt: 'x@clinic.test', facts: facts({ hits: [ssn] }), expect: { ruleId: 'phi' } },
    { name: 'numeric detectorScore: at or above', policy: custom, rcpt: 'x@clinic.test', facts: facts({ hits: [{ ...ssn, count: 2, score: 10 }] }), expect: { ruleId: 'score-7', candidates: ['portal'], reason: /detector score 10 ≥ 7/ } },
    { name: 'size.max: small enough', policy: custom, rcpt: 'x@internal.example', facts: facts({ size: 1024 }), expect: { ruleId: 'small-internal', tls: 'may' } },
    { name: 'size.max: too large', policy: custom, rcpt: 'x@internal.example', facts: facts({ size: 1025 }), expect: { ruleId: 'default', tls: 'verify' } },
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

  it('layer keys in any case, with a trailing dot or as IDN apply (they are normalised when loaded)', () => {
    const p = policySchema.parse({
      domains: { 'Partner.ORG': { tls: 'encrypt' }, '*.East.Example.': { tls: 'may' }, 'bücher.example': { tls: 'mta-sts' }, '*': { onNoMethod: 'bounce' } },
      recipients: { 'Boss@XN--BCHER-KVA.example': { methods: ['pgp'] } },
    });
    expect(Object.keys(p.domains).sort()).toEqual(['*', '*.east.example', 'partner.org', 'xn--bcher-kva.example']);
    const rows = (['a@partner.org', 'a@PARTNER.org', 'a@x.east.example', 'a@BÜCHER.example', 'a@xn--bcher-kva.example', 'boss@bücher.example', 'a@elsewhere.test'] as const).map((rcpt) => {
      const [d] = decide(p, { sender: 's@client.test', recipients: [rcpt], facts: facts() }, tlsOnly);
      return [rcpt, d!.ruleId, d!.tls, d!.onNoMethod];
    });
    expect(rows).toEqual([
      ['a@partner.org', 'domain:partner.org', 'encrypt', 'portal'],
      ['a@PARTNER.org', 'domain:partner.org', 'encrypt', 'portal'],
      ['a@x.east.example', 'domain:*.east.example', 'may', 'portal'],
      ['a@BÜCHER.example', 'domain:xn--bcher-kva.example', 'mta-sts', 'portal'],
      ['a@xn--bcher-kva.example', 'domain:xn--bcher-kva.example', 'mta-sts', 'portal'],
      ['boss@bücher.example', 'recipient:boss@xn--bcher-kva.example', 'mta-sts', 'portal'],
      ['a@elsewhere.test', 'domain:*', 'verify', 'bounce'],
    ]);
  });

  it('sender and recipient globs match an address whatever form its domain takes (U-labels, A-labels, full-width)', () => {
    // A rule for *@verified.test was dodged by dr@ｖｅｒｉｆｉｅｄ.test, which names the same domain
    // (the router delivered it there); and a glob written in A-labels never matched, since
    // smtp-server hands the domain over in U-labels.
    const p = policySchema.parse({
      rules: [
        { id: 'pgp-only', match: { recipient: '*@verified.test' }, action: { methods: ['pgp'], onNoMethod: 'bounce' } },
        { id: 'books', match: { recipient: 'dr.*@*.xn--bcher-kva.example' }, action: { methods: ['portal'] } },
        { id: 'from-books', match: { sender: '*@Bücher.example' }, action: { methods: ['portal'] } },
      ],
    });
    const rule = (rcpt: string, sender = 's@client.test') => decide(p, { sender, recipients: [rcpt], facts: facts() }, tlsOnly)[0]!.ruleId;
    expect([rule('dr@verified.test'), rule('dr@ｖｅｒｉｆｉｅｄ.test'), rule('DR@Verified.TEST')]).toEqual(['pgp-only', 'pgp-only', 'pgp-only']);
    expect([rule('dr.who@ward.bücher.example'), rule('dr.who@ward.xn--bcher-kva.example'), rule('nurse@ward.bücher.example')]).toEqual(['books', 'books', 'default']);
    expect([rule('x@clinic.test', 'a@xn--bcher-kva.example'), rule('x@clinic.test', 'a@bücher.example')]).toEqual(['from-books', 'from-books']);
  });

  it('a message whose text was not all scanned is decided as if PHI was found: protection is raised, never "nothing found"', () => {
    const [d] = decide(base, { sender: 's@client.test', recipients: ['a@clinic.test'], facts: { ...facts(), unscanned: 'message text exceeds detectors.maxScanBytes (2097152)' } }, tlsOnly);
    expect(d).toMatchObject({ ruleId: 'phi-detected', method: undefined });
    expect(d!.reasons.join('; ')).toMatch(/part of the text was not scanned \(message text exceeds detectors\.maxScanBytes \(2097152\)\), so it may hold PHI/);
    const [scanned] = decide(base, { sender: 's@client.test', recipients: ['a@clinic.test'], facts: facts() }, tlsOnly);
    expect(scanned).toMatchObject({ ruleId: 'default', method: 'tls' });
  });

  it('subjectTag: false matches only untagged mail', () => {
    const p = policySchema.parse({ rules: [{ id: 'untagged', match: { subjectTag: false }, action: { tls: 'encrypt' } }] });
    const one = (subject: string) => decide(p, { sender: 's@client.test', recipients: ['a@clinic.test'], facts: facts({ subject }) }, tlsOnly)[0]!;
    expect([one('Hello').ruleId, one('Hello').reasons[0]]).toEqual(['untagged', 'rule untagged: subject has no [secure] tag']);
    expect(one('Hello [Secure]').ruleId).toBe('default');
  });

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

describe('header patterns run in time linear in the header (RE2)', () => {
  // On V8's backtracking engine each of these takes seconds or more on the header below.
  const slow = ['.*.*.*=', '(a|aa)+$', '[a-z]+[a-z]+X', '^(a+)+$'];
  const policy = policySchema.parse({ rules: slow.map((pattern, i) => ({ id: `slow-${i}`, match: { header: { name: 'X-Tag', pattern } }, action: { methods: ['portal'] } })) });

  it('a header of 2 KB against four slow-on-V8 patterns decides at once (bound: catches backtracking, not speed)', () => {
    const t0 = Date.now();
    const d = decide(policy, { sender: 'a@clinic.example', recipients: ['b@x.example', 'c@y.example'], facts: facts({ headers: { 'x-tag': [`${'a'.repeat(2048)}!`] } }) }, tlsOnly);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(d.map((x) => x.ruleId)).toEqual(['default', 'default']);
  });

  it('and they still match what they should', () => {
    const at = (value: string) => decide(policy, { sender: 'a@clinic.example', recipients: ['b@x.example'], facts: facts({ headers: { 'x-tag': [value] } }) }, tlsOnly)[0]?.ruleId;
    expect([at('key=value'), at('aaaa'), at('abcX'), at('no match here!')]).toEqual(['slow-0', 'slow-1', 'slow-2', 'default']);
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

  const refusals: [string, unknown, string, RegExp][] = [
    ['a header pattern with a backreference (RE2 has none)', { rules: [{ id: 'r', match: { header: { name: 'x-a', pattern: '^(a)\\1$' } }, action: {} }] }, 'rules.0.match.header.0.pattern', /run on RE2, which guarantees time linear in the text and has no backreferences .*invalid escape sequence/],
    ['a header pattern with a lookahead', { rules: [{ id: 'r', match: { header: { name: 'x-a', pattern: 'secret(?!ary)' } }, action: {} }] }, 'rules.0.match.header.0.pattern', /no backreferences .* or lookaround/],
    ['a detector pattern with a lookbehind', { detectors: { custom: [{ name: 'c', pattern: '(?<=MRN )\\d+' }] } }, 'detectors.custom.0.pattern', /no backreferences .* or lookaround/],
    ['a detector pattern too large for the engine', { detectors: { custom: [{ name: 'c', pattern: '(?:a?){300}a{300}' }] } }, 'detectors.custom.0.pattern', /compiles to \d+ instructions, more than 500/],
    ['a domain key with a space', { domains: { 'partner org': {} } }, 'domains.partner org', /is not a domain pattern: use a domain \(example.org\)/],
    ['a wildcard in the middle', { domains: { 'a.*.org': {} } }, 'domains.a.*.org', /is not a domain pattern/],
    ['a wildcard without its dot', { domains: { '*partner.org': {} } }, 'domains.*partner.org', /is not a domain pattern/],
    ['an address as a domain key', { domains: { 'x@partner.org': {} } }, 'domains.x@partner.org', /is not a domain pattern/],
    ['two keys for one domain', { domains: { 'partner.org': {}, 'PARTNER.ORG': {} } }, 'domains.PARTNER.ORG', /"PARTNER.ORG" and "partner.org" are the same \(partner.org\): keep one/],
    ['a recipient key without a domain', { recipients: { chief: {} } }, 'recipients.chief', /is not an email address/],
    ['a bad recipientDomain pattern', { rules: [{ id: 'r', match: { recipientDomain: ['ok.example', 'not ok'] }, action: {} }] }, 'rules.0.match.recipientDomain.1', /is not a domain pattern/],
    ['a bad senderDomain pattern', { rules: [{ id: 'r', match: { senderDomain: '*.' }, action: {} }] }, 'rules.0.match.senderDomain.0', /is not a domain pattern/],
    ['a pattern among consumerDomains', { consumerDomains: ['gmail.com', '*.mail.example'] }, 'consumerDomains.1', /a domain, not a pattern/],
  ];
  for (const [name, input, path, message] of refusals) {
    it(`refuses ${name}, naming the key`, () => {
      const r = policySchema.safeParse(input);
      expect(r.success).toBe(false);
      const issue = r.success ? undefined : r.error.issues.find((i) => i.path.join('.') === path);
      expect(issue?.message).toMatch(message);
    });
  }
});
