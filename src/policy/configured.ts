import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { ConfigError } from '../config/load.js';
import { policySchema, type Policy } from './schema.js';
import { inlinePolicyOf, type PolicySection } from './section.js';
import { parsePolicyText } from './store.js';

/** Where the policy is written when nothing says otherwise. */
export const DEFAULT_POLICY_FILE = 'config/policy.yaml';

/** The policy a config names: inline, its file (or config/policy.yaml when it exists), or the built-in default. */
export async function configuredPolicy(section: PolicySection, configFile = 'the config'): Promise<{ policy: Policy; source: string; file?: string | undefined }> {
  const inline = inlinePolicyOf(section);
  if (inline) {
    const r = policySchema.safeParse(inline);
    if (!r.success) throw new ConfigError(configFile, r.error.issues.map((i) => `policy.${i.path.join('.')}: ${i.message}`));
    return { policy: r.data, source: `inline (policy section of ${configFile})` };
  }
  const file = configuredPolicyFile(section);
  if (!file) return { policy: policySchema.parse({}), source: 'built-in default' };
  return { policy: parsePolicyText(await readFile(file, 'utf8'), file), source: file, file };
}

export function configuredPolicyFile(section: PolicySection): string | undefined {
  if (inlinePolicyOf(section)) return undefined;
  return section.file ?? (existsSync(DEFAULT_POLICY_FILE) ? DEFAULT_POLICY_FILE : undefined);
}
