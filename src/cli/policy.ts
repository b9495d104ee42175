import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { ConfigError, configPathFrom, loadConfigFile } from '../config/load.js';
import { inspectMessage } from '../inspect/inspector.js';
import { decide } from '../policy/evaluate.js';
import { hasSubjectTag } from '../policy/match.js';
import { DEFAULT_POLICY, parsePolicyText } from '../policy/store.js';
import type { Policy } from '../policy/schema.js';
import type { Decision, MessageFacts } from '../types.js';

export interface ExplainOptions {
  config?: string;
  policy?: string;
  from: string;
  to: string[];
  subject?: string;
  file?: string;
  json?: boolean;
}

/** postern policy explain: each recipient's decision and why, without sending anything. */
export async function policyExplainCommand(opts: ExplainOptions): Promise<void> {
  const policy = await loadPolicy(opts.policy, opts.config);
  if (!policy) return;
  let facts: Pick<MessageFacts, 'subject' | 'headers' | 'detectors' | 'size' | 'error'>;
  if (opts.file) {
    const raw = await readFile(opts.file);
    facts = await inspectMessage(raw, raw.length, policy.detectors);
    if (opts.subject !== undefined) facts = { ...facts, subject: opts.subject };
  } else {
    facts = { subject: opts.subject ?? '', headers: {}, detectors: { hits: [], score: 0, categories: [] }, size: 0 };
  }
  const decisions = facts.error ? [] : decide(policy, { sender: opts.from, recipients: opts.to, facts });
  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ subject: facts.subject, detectors: facts.detectors, inspectError: facts.error, decisions }, null, 2)}\n`);
    return;
  }
  const lines = [
    `From: ${opts.from}`,
    `Subject: ${facts.subject || '(none)'}${hasSubjectTag(facts.subject, policy.subjectTag.tag) ? `  [tag ${policy.subjectTag.tag} found${policy.subjectTag.remove ? ', removed before delivery' : ''}]` : ''}`,
    `Detectors: ${facts.detectors.hits.length ? facts.detectors.hits.map((h) => `${h.detector}×${h.count} (${h.category}, score ${h.score})`).join(', ') : 'nothing found'}; score ${facts.detectors.score} (threshold ${policy.phiThreshold})`,
  ];
  if (facts.error) lines.push(`Inspection failed: ${facts.error} → every recipient: ${policy.onInspectError}`);
  for (const d of decisions) lines.push('', ...describe(d));
  process.stdout.write(`${lines.join('\n')}\n`);
}

function describe(d: Decision): string[] {
  const outcome = d.method
    ? d.method === 'tls'
      ? `TLS (${d.tls === 'mta-sts' ? 'MTA-STS-validated' : d.tls})`
      : d.method
    : `none possible now → ${d.onNoMethod}`;
  return [`${d.rcpt}`, `  method:     ${outcome}`, `  candidates: ${d.candidates.join(' > ')}`, `  rule:       ${d.ruleId}`, ...d.reasons.map((r) => `  why:        ${r}`)];
}

/** postern policy check [FILE]: validates a policy file. */
export async function policyCheckCommand(file: string | undefined, config: string | undefined): Promise<void> {
  const policy = await loadPolicy(file, config);
  if (!policy) return;
  process.stdout.write(`policy OK: ${policy.rules.length} rule(s), ${Object.keys(policy.domains).length} domain and ${Object.keys(policy.recipients).length} recipient entries; defaults ${policy.defaults.methods.join(' > ')}, TLS ${policy.defaults.tls}\n`);
}

async function loadPolicy(explicit: string | undefined, configFile: string | undefined): Promise<Policy | undefined> {
  let file = explicit;
  try {
    if (!file) {
      const configPath = configPathFrom(configFile);
      const config = existsSync(configPath) ? loadConfigFile(configPath) : undefined;
      file = config?.policy.file ?? (existsSync('config/policy.yaml') ? 'config/policy.yaml' : undefined);
    }
    if (!file) return DEFAULT_POLICY;
    return parsePolicyText(await readFile(file, 'utf8'), file);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exitCode = 2;
      return undefined;
    }
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      process.stderr.write(`cannot read policy file ${file}\n`);
      process.exitCode = 2;
      return undefined;
    }
    throw err;
  }
}
