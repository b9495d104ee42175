import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

/**
 * Secrets stay out of the config file: any string may be `${env:NAME}` (an environment
 * variable) or `${file:PATH}` (a file's contents, trimmed; relative paths start at the working directory).
 * Problems are collected with the key path so the operator knows what to fix.
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

function interpolateString(text: string, baseDir: string, env: NodeJS.ProcessEnv, problems: string[], path: string[]): string {
  return text.replace(/\$\{(env|file):([^}]+)\}/g, (_whole, kind: string, ref: string) => {
    const key = path.join('.');
    if (kind === 'env') {
      const found = env[ref];
      if (found === undefined) problems.push(`${key}: environment variable ${ref} is not set (set it, or put the value in the config)`);
      return found ?? '';
    }
    const file = resolve(baseDir, ref);
    try {
      return readFileSync(file, 'utf8').trim();
    } catch (err) {
      problems.push(`${key}: cannot read secret file ${file}: ${(err as Error).message}`);
      return '';
    }
  });
}
