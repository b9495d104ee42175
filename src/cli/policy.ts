import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, configFileNamed, configPathFrom, loadConfigFile, validateConfig } from '../config/load.js';
import type { PosternConfig } from '../config/schema.js';
import { parseSize } from '../config/units.js';
import { sharedForecast } from './shared-forecast.js';
import { explainForConfig, mtaStsRouteKey } from '../policy/explain-configured.js';
import { explainFacts } from '../policy/explain-message.js';
import { hasSubjectTag } from '../policy/match.js';
import { configuredPolicy } from '../policy/configured.js';
import { parsePolicyText } from '../policy/store.js';
import type { Policy } from '../policy/schema.js';
import type { Decision } from '../types.js';

export interface ExplainOptions {
  config?: string;
  policy?: string;
  from: string;
  to: string[];
  subject?: string;
  file?: string;
  /** Bytes or a size like 30MB: the size `size` rules see. */
  size?: string;
  json?: boolean;
}

/**
 * postern policy explain: each recipient's decision and why, without sending anything,
 * with the gateway's availability (policy/explain.ts): the portal as configured, pgp and
 * smime when the key store holds a usable key (no WKD or keyserver is asked).
 */
export async function policyExplainCommand(opts: ExplainOptions): Promise<void> {
  const size = opts.size === undefined ? undefined : parseSize(opts.size);
  if (opts.size !== undefined && size === undefined) {
    process.stderr.write(`--size: "${opts.size}" is not a size (e.g. 30MB or 1048576)\n`);
    process.exitCode = 2;
    return;
  }
  const setup = await orExit(opts.policy, async () => {
    const config = loadConfig(opts.config);
    return { config, policy: opts.policy ? await loadPolicy(opts.policy) : (await configuredPolicy(config.policy, configPathFrom(opts.config))).policy };
  });
  if (!setup) return;
  const { config, policy } = setup;
  // Inspected as the gateway inspects: --subject is part of the message the detectors scan.
  const facts = await explainFacts(policy, { from: opts.from, to: opts.to, subject: opts.subject, message: opts.file ? await readFile(opts.file) : undefined, size });
  const shared = await sharedForecast(config);
  let decisions: Decision[];
  try {
    decisions = facts.error ? [] : await explainForConfig(config, policy, { sender: opts.from, recipients: opts.to, facts }, shared.forecast);
  } finally {
    shared.close();
  }
  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ subject: facts.subject, size: facts.size, detectors: facts.detectors, inspectError: facts.error, tlsForecast: shared.label, decisions }, null, 2)}\n`);
    return;
  }
  const lines = [
    `From: ${opts.from}`,
    `Subject: ${facts.subject || '(none)'}${hasSubjectTag(facts.subject, policy.subjectTag.tag) ? `  [tag ${policy.subjectTag.tag} found${policy.subjectTag.remove ? ', removed before delivery' : ''}]` : ''}`,
    ...(size === undefined ? [] : [`Size: ${facts.size} bytes (--size)`]),
    `Detectors: ${facts.detectors.hits.length ? facts.detectors.hits.map((h) => `${h.detector}×${h.count} (${h.category}, score ${h.score})`).join(', ') : 'nothing found'}; score ${facts.detectors.score} (threshold ${policy.phiThreshold})`,
  ];
  lines.push(`TLS forecast: ${shared.label}`);
  if (facts.error) lines.push(`Inspection failed: ${facts.error} → every recipient: ${policy.onInspectError}`);
  for (const d of decisions) lines.push('', ...describe(d, config));
  process.stdout.write(`${lines.join('\n')}\n`);
}

/** One recipient's decision as text; `config` says which domains go by a transport route. */
function describe(d: Decision, config: PosternConfig): string[] {
  const routeKey = mtaStsRouteKey(d, config);
  const tls = d.tls !== 'mta-sts' ? d.tls : routeKey === undefined ? 'MTA-STS-validated' : `MTA-STS required, not possible through transport route "${routeKey}": held`;
  const outcome = d.method
    ? d.method === 'tls'
      ? `TLS (${tls})`
      : d.method
    : `none possible now → ${d.onNoMethod === 'portal' ? 'defer (the portal cannot serve this recipient)' : d.onNoMethod}`;
  return [`${d.rcpt}`, `  method:     ${outcome}`, `  candidates: ${d.candidates.join(' > ')}`, `  rule:       ${d.ruleId}`, ...d.reasons.map((r) => `  why:        ${r}`)];
}

/** postern policy check [FILE]: validates a policy file, or the policy the config names (its file or its inline policy section). */
export async function policyCheckCommand(file: string | undefined, config: string | undefined): Promise<void> {
  const checked = await orExit(file, async () => (file ? { policy: await loadPolicy(file), source: file } : configuredPolicy(loadConfig(config).policy, configPathFrom(config))));
  if (!checked) return;
  process.stdout.write(`${policySummary(checked.policy, checked.source)}\n`);
}

/** One line about a valid policy (policy check, check-config). */
export function policySummary(policy: Policy, source: string): string {
  return `policy OK: ${policy.rules.length} rule(s), ${Object.keys(policy.domains).length} domain and ${Object.keys(policy.recipients).length} recipient entries; defaults ${policy.defaults.methods.join(' > ')}, TLS ${policy.defaults.tls} (${source})`;
}

/**
 * The config file named by --config or POSTERN_CONFIG, which must then exist (as for
 * `postern start`: a missing one is not quietly replaced by the defaults, which would
 * explain decisions with another policy); else config/postern.yaml when it exists, else
 * the built-in defaults.
 */
function loadConfig(file: string | undefined): PosternConfig {
  const path = configPathFrom(file);
  return configFileNamed(file) || existsSync(path) ? loadConfigFile(path) : validateConfig({});
}

async function loadPolicy(file: string): Promise<Policy> {
  return parsePolicyText(await readFile(file, 'utf8'), file);
}

/** Runs a loading step; a config or policy problem is printed and ends the command with exit code 2. */
async function orExit<T>(policyFile: string | undefined, load: () => Promise<T>): Promise<T | undefined> {
  try {
    return await load();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exitCode = 2;
      return undefined;
    }
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      process.stderr.write(`cannot read policy file ${policyFile ?? (err as NodeJS.ErrnoException).path ?? ''}\n`);
      process.exitCode = 2;
      return undefined;
    }
    throw err;
  }
}
