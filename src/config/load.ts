import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { z } from 'zod';
import { configSchema, type PosternConfig } from './schema.js';
import { interpolateSecrets } from './interpolate.js';
import { listenAddresses, listenConflicts } from './listen-addresses.js';
import { parseKeyMaterial } from '../common/envelope-crypto.js';
import { pemOrFileProblem } from '../common/pem-or-file.js';

export const DEFAULT_CONFIG_PATH = 'config/postern.yaml';

/** A config problem an operator can act on: every line names the key and the fix. */
export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`invalid configuration in ${file}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/**
 * The config file: --config, else $POSTERN_CONFIG, else config/postern.yaml. An empty
 * value is refused: resolve('') is the working directory, which no one means.
 */
export function configPathFrom(explicit: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const [name, given] = explicit !== undefined ? ['--config', explicit] : ['POSTERN_CONFIG', env.POSTERN_CONFIG];
  if (given !== undefined && !given.trim()) {
    throw new ConfigError(name, [`${name} is set but empty: give the config file's path, or leave ${name} out to use ${DEFAULT_CONFIG_PATH}`]);
  }
  return resolve(given ?? DEFAULT_CONFIG_PATH);
}

/** Whether the config file was named (--config or $POSTERN_CONFIG): then it must exist, where the default may be absent. */
export function configFileNamed(explicit: string | undefined, env: NodeJS.ProcessEnv = process.env): boolean {
  return explicit !== undefined || env.POSTERN_CONFIG !== undefined;
}

export function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): PosternConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [`cannot read the config file: ${(err as Error).message} (pass --config FILE or set POSTERN_CONFIG)`]);
  }
  return parseConfigText(text, file, env);
}

export function parseConfigText(text: string, file: string, env: NodeJS.ProcessEnv = process.env): PosternConfig {
  let raw: unknown;
  try {
    raw = parseYaml(text) ?? {};
  } catch (err) {
    const where = err instanceof YAMLParseError && err.linePos ? ` at line ${err.linePos[0].line}` : '';
    throw new ConfigError(file, [`YAML syntax error${where}: ${(err as Error).message.split('\n')[0]}`]);
  }
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError(file, ['the top level must be a mapping of keys (dataDir:, smtp:, delivery:, ...)']);
  const problems: string[] = [];
  const interpolated = interpolateSecrets(raw, process.cwd(), env, problems);
  if (problems.length) throw new ConfigError(file, problems);
  return validateConfig(interpolated, file);
}

export function validateConfig(raw: unknown, file = '<inline>'): PosternConfig {
  const result = configSchema.safeParse(raw);
  if (!result.success) throw new ConfigError(file, result.error.issues.flatMap((issue) => describeIssue(issue, [])));
  const missing = [...valueProblems(result.data), ...unreadableFiles(result.data), ...sharedKeyProblems(result.data)];
  if (missing.length) throw new ConfigError(file, missing);
  return result.data;
}

/**
 * Values the schema lets through that start would refuse, or take for something else:
 * an empty dataDir is the working directory, a portal master key of the wrong size
 * stops the start (archive.masterKeys are checked by the schema), one of
 * portal.tls.cert/key alone was quietly replaced by the SMTP certificate, and two
 * listeners on one port cannot both bind.
 */
function valueProblems(config: PosternConfig): string[] {
  const problems: string[] = [];
  if (!config.dataDir.trim()) problems.push('dataDir: empty, which would mean the working directory: give the directory for the spool and keys, e.g. /var/lib/postern');
  config.portal.masterKeys.forEach((k, i) => {
    if (!parseKeyMaterial(k.key)) problems.push(`portal.masterKeys.${i}.key: must be 32 bytes, base64 (or hex:...); make one with: openssl rand -base64 32`);
  });
  const { cert, key } = config.portal.tls;
  if (Boolean(cert) !== Boolean(key)) problems.push('portal.tls: set both cert and key, or neither (the SMTP certificate is then used)');
  problems.push(...listenConflicts(listenAddresses(config)));
  return problems;
}

/**
 * Instances sharing a Redis read each other's portal messages (and archive exports):
 * each generating its own development master key would make them unreadable.
 */
function sharedKeyProblems(config: PosternConfig): string[] {
  if (config.queue.backend !== 'redis') return [];
  const problems: string[] = [];
  if (config.portal.enabled && !config.portal.masterKeys.length) problems.push('portal.masterKeys: required with queue.backend: redis (every instance must use the same key; make one with: openssl rand -base64 32)');
  if (config.archive.enabled && !config.archive.masterKeys.length) problems.push('archive.masterKeys: required with queue.backend: redis (every instance must use the same key; make one with: openssl rand -base64 32)');
  return problems;
}

/** Files the config names must be readable now, not at the first TLS handshake. */
function unreadableFiles(config: PosternConfig): string[] {
  const named: [string, string | undefined][] = [
    ['smtp.tls.cert', config.smtp.tls.cert],
    ['smtp.tls.key', config.smtp.tls.key],
    ...config.delivery.tls.trust.map((f, i): [string, string] => [`delivery.tls.trust.${i}`, f]),
    ['redis.tls.ca', config.redis.tls?.ca],
    ...config.archive.sinks.flatMap((s, i) => (s.type === 'smtp' ? s.ca.map((f, j): [string, string] => [`archive.sinks.${i}.ca.${j}`, f]) : [])),
  ];
  return named.flatMap(([key, value]) => (value ? (pemOrFileProblem(key, value) ?? []) : []));
}

function describeIssue(issue: z.core.$ZodIssue, parent: PropertyKey[]): string[] {
  const path = [...parent, ...issue.path];
  const key = path.length ? path.map(String).join('.') : '(top level)';
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys.join(', ');
    return [`${key}: unknown key${issue.keys.length > 1 ? 's' : ''} ${keys} (check the spelling against the config reference in README.md)`];
  }
  if (issue.code === 'invalid_union') {
    // A value of one alternative's type (a string where "host:port" or an object is
    // allowed) is told what is wrong with it as that alternative; a value of no
    // alternative's type gets the union's own message, which says what is expected.
    const meant = issue.errors.filter((branch) => !branch.every((i) => (i.code === 'invalid_type' || i.code === 'invalid_value') && i.path.length === 0));
    if (meant.length === 1) return (meant[0] as z.core.$ZodIssue[]).flatMap((i) => describeIssue(i, path));
  }
  if (issue.code === 'invalid_type' && / received undefined$/.test(issue.message)) return [`${key}: required but missing`];
  return [`${key}: ${issue.message}`];
}
