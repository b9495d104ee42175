import { RESPONSE_RULES, type ResponseRule } from './response-rules.js';

export interface Classification {
  action: 'defer' | 'bounce';
  category: string;
  /** RFC 3463 status: from the reply when it has one, else derived from the code. */
  status: string;
  code?: number | undefined;
  response: string;
}

const ENHANCED = /^\d{3}[ -]([245]\.\d{1,3}\.\d{1,3})\b/;

/** Reads an SMTP reply line with the rule table. */
export function classifyReply(response: string, rules: ResponseRule[] = RESPONSE_RULES): Classification {
  const text = response.trim();
  const codeText = /^(\d{3})/.exec(text)?.[1];
  const code = codeText ? Number(codeText) : undefined;
  const rule = codeText ? rules.find((r) => (!r.code || r.code.test(codeText)) && (!r.text || r.text.test(text))) : undefined;
  const action = rule?.action ?? (code && code >= 500 ? 'bounce' : 'defer');
  let status = ENHANCED.exec(text)?.[1] ?? (code && code >= 500 ? '5.0.0' : '4.0.0');
  // The status class must agree with what we do: a 5xx we retry is reported as 4.x.x.
  if (action === 'defer' && status.startsWith('5')) status = '4' + status.slice(1);
  if (action === 'bounce' && !status.startsWith('5')) status = '5' + status.slice(1);
  return { action, category: rule?.category ?? (action === 'bounce' ? 'permanent' : 'temporary'), status, code, response: text };
}

/** Failures that never produced a reply (network, TLS, timeouts) are always temporary. */
export function classifyLocal(category: string, status: string, message: string): Classification {
  return { action: 'defer', category, status, response: message };
}
