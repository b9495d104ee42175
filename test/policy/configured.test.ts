import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfigText } from '../../src/config/load.js';
import { createLogger } from '../../src/events/logger.js';
import { configuredPolicy } from '../../src/policy/configured.js';
import { PolicyStore } from '../../src/policy/store.js';
import { inlinePolicyOf } from '../../src/policy/section.js';

const problems = (text: string): string[] => {
  try {
    parseConfigText(`hostname: gw.example.org\n${text}`, 'postern.yaml', {});
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
};

describe('the policy section of postern.yaml: a file, or the policy itself', () => {
  const inline = ['policy:', '  defaults: { methods: [tls], tls: encrypt, onNoMethod: defer }', '  domains: { Partner.ORG: { tls: verify } }', '  rules:', '    - { id: tagged, match: { subjectTag: true }, action: { methods: [portal] } }'].join('\n');

  it('takes an inline policy, validated with the config and used by the gateway', async () => {
    const config = parseConfigText(`hostname: gw.example.org\n${inline}\n`, 'postern.yaml', {});
    expect(inlinePolicyOf(config.policy)).toBeDefined();
    const { policy, source } = await configuredPolicy(config.policy, 'postern.yaml');
    expect(source).toBe('inline (policy section of postern.yaml)');
    expect([policy.defaults.tls, Object.keys(policy.domains), policy.rules.map((r) => r.id)]).toEqual(['encrypt', ['partner.org'], ['tagged']]);
    const store = new PolicyStore(undefined, createLogger('silent'), inlinePolicyOf(config.policy));
    await store.start();
    expect(store.current().rules.map((r) => r.id)).toEqual(['tagged']);
  });

  it('names the key of a problem in an inline policy, under policy', () => {
    expect(problems('policy:\n  rules: [{ id: "bad id", match: {}, action: {} }]\n  defaults: { tls: sometimes }\n').sort()).toEqual([
      expect.stringMatching(/^policy\.defaults\.tls: Invalid option/),
      'policy.rules.0.id: use letters, digits, dot, dash or underscore',
    ]);
    expect(problems('policy:\n  fiel: policy.yaml\n')).toEqual([expect.stringMatching(/^policy: unknown key fiel/)]);
    expect(problems('policy:\n  domains: { "not a domain": {} }\n')).toEqual([expect.stringMatching(/^policy\.domains\.not a domain: "not a domain" is not a domain pattern/)]);
  });

  it('refuses a file and an inline policy together', () => {
    expect(problems('policy:\n  file: config/policy.yaml\n  rules: []\n')).toEqual([expect.stringMatching(/^policy\.file: a policy file and an inline policy \(rules\) are both set: keep one/)]);
  });

  it('reads the named file; names the problem of a broken one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'postern-configured-'));
    writeFileSync(join(dir, 'ok.yaml'), 'phiThreshold: 9\n');
    writeFileSync(join(dir, 'bad.yaml'), 'phiThreshold: lots\n');
    expect(await configuredPolicy({ file: join(dir, 'ok.yaml') })).toMatchObject({ source: join(dir, 'ok.yaml'), policy: { phiThreshold: 9 } });
    await expect(configuredPolicy({ file: join(dir, 'bad.yaml') })).rejects.toThrow(/phiThreshold/);
  });
});
