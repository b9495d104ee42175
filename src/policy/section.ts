import type { z } from 'zod';
import { policySchema } from './schema.js';

/**
 * The `policy:` section of postern.yaml: `file` names a policy file (hot-reloaded), or
 * the policy itself is written in the section (the keys of a policy file: rules,
 * domains, defaults, ...). Not both.
 */
export type PolicySection = { file?: string | undefined } & Record<string, unknown>;

/** The policy written inline in the section, or undefined when there is none. */
export function inlinePolicyOf(section: PolicySection): Record<string, unknown> | undefined {
  const { file: _file, ...rest } = section;
  return Object.keys(rest).length ? rest : undefined;
}

/** Validates an inline policy as part of the config: problems name the key under policy. */
export function checkPolicySection(section: PolicySection, ctx: z.RefinementCtx): void {
  const inline = inlinePolicyOf(section);
  if (!inline) return;
  if (section.file !== undefined) ctx.addIssue({ code: 'custom', path: ['file'], message: `a policy file and an inline policy (${Object.keys(inline).join(', ')}) are both set: keep one` });
  const r = policySchema.safeParse(inline);
  if (!r.success) for (const i of r.error.issues) ctx.addIssue({ code: 'custom', path: i.path as (string | number)[], message: i.code === 'unrecognized_keys' ? `unknown key ${i.keys.join(', ')}` : i.message });
}
