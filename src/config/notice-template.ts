import { z } from 'zod';

/** What a portal notice template may say: {{name}} for each. */
export const NOTICE_PLACEHOLDERS = ['organisation', 'logoUrl', 'noticeText', 'sender', 'link', 'subject'] as const;

/** {{ name }}: the placeholder syntax of portal notice templates. */
export const PLACEHOLDER = /\{\{\s*([^}\s]*)\s*\}\}/g;

/**
 * A portal notice template (portal.organisation.noticeTemplate.text / .html): only the
 * placeholders the notice fills, and the link among them, checked when the config is
 * loaded rather than when the first notice goes out.
 */
export const noticeTemplate = z.string().superRefine((text, ctx) => {
  const names = [...text.matchAll(PLACEHOLDER)].map((m) => m[1] as string);
  const unknown = names.filter((name) => !(NOTICE_PLACEHOLDERS as readonly string[]).includes(name));
  const known = NOTICE_PLACEHOLDERS.map((n) => `{{${n}}}`).join(', ');
  if (unknown.length) ctx.addIssue({ code: 'custom', message: `unknown placeholder ${unknown.map((n) => `{{${n}}}`).join(', ')}; use ${known}` });
  if (!names.includes('link')) ctx.addIssue({ code: 'custom', message: 'must contain {{link}}: without it the recipient cannot open the message' });
});
