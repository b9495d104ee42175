/**
 * How remote replies are read: the first rule that matches decides. Kept as data, in the
 * spirit of ZoneMTA's bounces.txt, so a new provider quirk is one line here, not another
 * if-statement. `code` matches the 3-digit reply,
 * `text` the whole reply line(s), case-insensitively.
 */
export interface ResponseRule {
  code?: RegExp;
  text?: RegExp;
  action: 'defer' | 'bounce';
  category: string;
}

export const RESPONSE_RULES: ResponseRule[] = [
  // Permanent codes that really mean "later": greylisting and rate limits dressed as 5xx.
  { code: /^5/, text: /greylist|grey-list|try (again )?later|temporar(il)?y|rate limit|too many (connections|messages)/i, action: 'defer', category: 'throttled' },
  // RFC 5321 §4.5.3.1.10: 552 for too many recipients is treated like 452.
  { code: /^552$/, text: /too many recipients/i, action: 'defer', category: 'too-many-recipients' },
  // Full mailboxes often clear up; give the recipient the retry lifetime.
  { code: /^5/, text: /mailbox (is )?full|over ?quota|quota exceeded|insufficient (system )?storage|5\.2\.2/i, action: 'defer', category: 'mailbox-full' },
  { code: /^5/, text: /5\.1\.[1-6]|user unknown|no such (user|mailbox)|unknown (user|recipient)|does not exist|recipient (address )?rejected|invalid recipient/i, action: 'bounce', category: 'recipient' },
  { code: /^5/, text: /spamhaus|blocklist|blacklist|blocked|listed|reputation|5\.7\.1/i, action: 'bounce', category: 'blocked' },
  { code: /^5/, text: /message (is )?too (big|large)|size limit|5\.3\.4/i, action: 'bounce', category: 'message-size' },
  { code: /^5/, text: /5\.7\.[0-9]+|policy|authenticat|dmarc|spf|dkim/i, action: 'bounce', category: 'policy' },
  { code: /^421$/, action: 'defer', category: 'connection' },
  { code: /^45[0-2]$/, text: /too many recipients|4\.5\.3/i, action: 'defer', category: 'too-many-recipients' },
  { code: /^4/, action: 'defer', category: 'temporary' },
  { code: /^5/, action: 'bounce', category: 'permanent' },
];
