import { appendFileSync, mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/events/logger.js';
import { readSettled } from '../../src/policy/settled-file.js';
import { PolicyStore } from '../../src/policy/store.js';
import { runCli } from '../helpers/cli.js';
import type { TestGateway } from '../helpers/gateway.js';
import { scenario } from '../helpers/scenario.js';
import { sendMail, testMessage } from '../helpers/smtp-client.js';

const STRICT = 'defaults: { methods: [portal], onNoMethod: defer }\nrules: []\n';
const policyFile = (text: string) => {
  const file = join(mkdtempSync(join(tmpdir(), 'postern-empty-policy-')), 'policy.yaml');
  writeFileSync(file, text);
  return file;
};

/**
 * A policy file with no document in it — truncated by a failed render, `> policy.yaml`,
 * an editor mid-save — is not "the built-in default": taking it so would quietly replace
 * a strict policy with a laxer one. It is refused like any broken change.
 */
describe('an empty policy file', () => {
  const s = scenario();

  async function gatewayWith(file: string): Promise<TestGateway> {
    const mx = await s.mx();
    return s.gateway({ policy: { file }, delivery: { routes: { '*': { nexthop: `127.0.0.1:${mx.port}`, tls: 'none' } }, retry: { initialDelay: '1h' } } });
  }
  const decide = async (gw: TestGateway, to: string) => {
    const sent = await sendMail(gw.port, { from: 'dr@client.test', to: [to], raw: testMessage({ subject: 'hello' }) });
    expect(sent.ok).toBe(true);
    return gw.waitForLog((l) => l.event === 'policy.decision' && l.queueId === sent.queueId);
  };

  for (const [what, text] of [['emptied', ''], ['only comments and blank lines', '# policy: see the wiki\n\n   \n# (nothing yet)\n']] as const) {
    it(`${what}, on reload: refused (policy.rejected), the previous policy stays in force`, async () => {
      const file = policyFile(STRICT);
      const gw = await gatewayWith(file);
      expect(await decide(gw, 'one@dest.test')).toMatchObject({ rule: 'default', method: 'portal' });
      writeFileSync(file, text);
      const outcome = await gw.waitForLog((l) => l.event === 'policy.rejected' || (l.event === 'policy.loaded' && l.generation === 1));
      expect(outcome).toMatchObject({ event: 'policy.rejected', level: 'error', file, problems: ['policy file is empty; previous policy stays in force'] });
      expect(await decide(gw, 'two@dest.test')).toMatchObject({ rule: 'default', method: 'portal' });
    });
  }

  it('at start: the gateway does not start, naming the file and what to write instead', async () => {
    const file = policyFile('');
    const store = new PolicyStore(file, createLogger('silent'));
    await expect(store.start()).rejects.toThrow(`invalid configuration in ${file}:\n  - policy file is empty (nothing but blank lines or comments): write {} to use the built-in default policy`);
    // "{}" is the built-in default, said on purpose.
    const explicit = new PolicyStore(policyFile('{}\n'), createLogger('silent'));
    await explicit.start();
    expect(explicit.current().rules.map((r) => r.id)).toEqual(['secure-tag', 'phi-detected', 'consumer-mail']);
    explicit.close();
  });

  it('`postern policy check` refuses it too (exit 2)', async () => {
    const r = await runCli(['policy', 'check', policyFile('# nothing\n')]);
    expect([r.code, r.stderr]).toEqual([2, expect.stringContaining('policy file is empty')]);
  });
});

describe('a policy file read while it is being written', () => {
  it('is not taken when its size, modification time or inode changed during the read', async () => {
    const file = policyFile('phiThreshold: 5\n');
    expect(await readSettled(file)).toBe('phiThreshold: 5\n');
    // The writer goes on after the reader got the first half.
    const appended = await readSettled(file, async (f) => {
      const half = await readFile(f, 'utf8');
      appendFileSync(f, 'rules: []\n');
      return half;
    });
    expect(appended).toBeUndefined();
    // Replaced by rename during the read: the text read is the old file's.
    const renamed = await readSettled(file, async (f) => {
      const old = await readFile(f, 'utf8');
      const tmp = `${f}.tmp`;
      writeFileSync(tmp, old);
      renameSync(tmp, f);
      return old;
    });
    expect(renamed).toBeUndefined();
  });
});
