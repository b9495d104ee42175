import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

/**
 * Secrets stay out of the config file: any string may be `${env:NAME}` (an environment
 * variable) or `${file:PATH}` (a file's contents, trimmed; relative paths start at the working directory);
 * `$${` is a literal `${`. Problems are collected with the key path so the operator knows what to fix.
 */
export function interpolateSecrets(
  value: unknown,
  baseDir: string,
  env: NodeJS.ProcessEnv,
  problems: string[],
  path: string[] = [],
): unknown {
  if (typeof value === 'string') return interpolateString(value, baseDir, env, problems, path);
  if (Array.isArray(value)) return value.map((v, i) => interpolateSecrets(v, baseDir, env, problems, [...path, String(i)]));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = interpolateSecrets(v, baseDir, env, problems, [...path, k]);
    return out;
  }
  return value;
}

/**
 * Every `${` starts a reference, so that a misspelt one (`${ENV:X}`, `${env:X` without its
 * brace, `${secret:X}`) is a config error rather than its literal text quietly becoming a
 * password, token or HMAC key. `$${` stands for a literal `${`; a `$` not followed by `{`
 * (as in password hashes) is plain text.
 */
const REFERENCE_OR_ESCAPE = /\$\$\{|\$\{(?:(env|file):([^}\r\n]+)\})?/g;
const SUPPORTED_FORMS = 'the supported forms are ${env:NAME} and ${file:PATH} (write $${ for a literal ${)';

function interpolateString(text: string, baseDir: string, env: NodeJS.ProcessEnv, problems: string[], path: string[]): string {
  const key = path.join('.');
  return text.replace(REFERENCE_OR_ESCAPE, (whole: string, kind: string | undefined, ref: string | undefined, offset: number) => {
    if (whole === '$${') return '${';
    if (!kind || !ref) {
      problems.push(`${key}: ${malformedReference(text.slice(offset))}; ${SUPPORTED_FORMS}`);
      return whole;
    }
    return kind === 'env' ? fromEnv(ref, env, key, problems) : fromFile(ref, baseDir, key, problems);
  });
}

function fromEnv(name: string, env: NodeJS.ProcessEnv, key: string, problems: string[]): string {
  const found = env[name];
  if (found === undefined) problems.push(`${key}: environment variable ${name} is not set (set it, or put the value in the config)`);
  return found ?? '';
}

function fromFile(ref: string, baseDir: string, key: string, problems: string[]): string {
  const file = resolve(baseDir, ref);
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (err) {
    problems.push(`${key}: cannot read secret file ${file}: ${(err as Error).message}`);
    return '';
  }
}

/**
 * What is wrong with a `${` that is no reference. Only the kind word is quoted: the rest
 * may be (part of) the secret the operator meant to keep out of the config.
 */
function malformedReference(rest: string): string {
  const kind = /^\$\{([A-Za-z][\w-]{0,19}):/.exec(rest)?.[1];
  if (!kind) return '"${" does not start a reference';
  const lower = kind.toLowerCase();
  if (lower !== 'env' && lower !== 'file') return `\${${kind}:...} is not a kind of reference Postern knows`;
  if (kind !== lower) return `\${${kind}:...} must be written in lower case (\${${lower}:...})`;
  if (/^\$\{\w+:\}/.test(rest)) return `\${${kind}:} names no ${kind === 'env' ? 'variable' : 'file'}`;
  return `\${${kind}:... has no closing "}" on its line`;
}
