import { PLACEHOLDER } from '../config/notice-template.js';
import type { PosternConfig } from '../config/schema.js';
import { composeMessage, escapeHtml } from './compose.js';

export interface NoticeInput {
  to: string;
  senderName: string;
  link: string;
  /** Only when portal.showSubject allows it. */
  subject?: string | undefined;
  kind: 'message' | 'reset';
}

/**
 * The notice a portal recipient gets by ordinary mail: who sent something, and a link.
 * No PHI: the original subject appears only when the operator allows it, the body never.
 * A message notice follows portal.organisation.noticeTemplate when one is set; a
 * password-reset mail always has the built-in wording.
 */
export async function buildNotice(config: PosternConfig, input: NoticeInput): Promise<Buffer> {
  const org = config.portal.organisation;
  const from = org.fromAddress ?? `secure-notice@${config.hostname}`;
  const lead = input.kind === 'reset' ? 'A new password was requested for your secure messages.' : `${input.senderName} sent you a secure message.`;
  const subject = input.kind === 'reset' ? `${org.name}: reset your password` : input.subject ? `Secure message: ${input.subject}` : `Secure message from ${input.senderName}`;
  const action = input.kind === 'reset' ? 'Set a new password (the link works once, for 30 minutes):' : org.noticeText;
  const values: Record<string, string> = { organisation: org.name, logoUrl: org.logoUrl ?? '', noticeText: org.noticeText, sender: input.senderName, link: input.link, subject: input.subject ?? '' };
  const template = input.kind === 'message' ? org.noticeTemplate : undefined;
  const text = template?.text ? fill(template.text, values, (v) => v) : [lead, '', action, input.link, '', `— ${org.name}`].join('\r\n');
  const logo = org.logoUrl ? `<img src="${escapeHtml(org.logoUrl)}" alt="${escapeHtml(org.name)}" height="40"><br>` : '';
  const html = template?.html
    ? fill(template.html, values, escapeHtml)
    : `<!doctype html><html><body style="font-family:system-ui,sans-serif;max-width:36em">${logo}<p>${escapeHtml(lead)}</p><p>${escapeHtml(action)}</p><p><a href="${escapeHtml(input.link)}" style="display:inline-block;padding:.6em 1.2em;background:#0b5394;color:#fff;text-decoration:none;border-radius:4px">${input.kind === 'reset' ? 'Set a new password' : 'Open the secure message'}</a></p><p style="color:#555;font-size:.9em">${escapeHtml(org.name)}</p></body></html>`;
  return composeMessage({ from: `"${org.name.replace(/"/g, '')}" <${from}>`, to: [input.to], subject, text, html, headers: { 'Auto-Submitted': 'auto-generated' } });
}

/** A template with its placeholders filled (names checked when the config was loaded). */
function fill(template: string, values: Record<string, string>, escape: (value: string) => string): string {
  return template.replace(PLACEHOLDER, (_whole, name: string) => escape(values[name] ?? ''));
}

/** A short SMS with the link and nothing else. */
export function smsText(config: PosternConfig, input: Pick<NoticeInput, 'senderName' | 'link' | 'kind'>): string {
  const org = config.portal.organisation.name;
  return input.kind === 'reset' ? `${org}: reset your password: ${input.link}` : `${org}: ${input.senderName} sent you a secure message: ${input.link}`;
}
