import { describe, expect, it } from 'vitest';
import { classifyLocal, classifyReply } from '../../src/deliver/classify.js';
import { RESPONSE_RULES, type ResponseRule } from '../../src/deliver/response-rules.js';

type Row = [reply: string, action: 'defer' | 'bounce', category: string, status: string];

const TABLE: Row[] = [
  // Greylisting and rate limits dressed as 5xx: retried, reported as 4.x.x.
  ['550 5.7.1 Greylisted, please try again later', 'defer', 'throttled', '4.7.1'],
  ['554 5.7.1 Message greylisted', 'defer', 'throttled', '4.7.1'],
  ['550 grey-listed by policy', 'defer', 'throttled', '4.0.0'],
  ['554 Try again later', 'defer', 'throttled', '4.0.0'],
  ['550 5.4.5 Daily sending quota exceeded, try later', 'defer', 'throttled', '4.4.5'],
  ['550 5.7.0 Temporarily rejected', 'defer', 'throttled', '4.7.0'],
  ['554 5.7.0 Rate limit exceeded', 'defer', 'throttled', '4.7.0'],
  ['550 Too many connections from your IP', 'defer', 'throttled', '4.0.0'],
  ['550 5.7.1 Service temporary unavailable', 'defer', 'throttled', '4.7.1'],
  // 552 too many recipients is 452 (RFC 5321 §4.5.3.1.10).
  ['552 5.5.3 Too many recipients', 'defer', 'too-many-recipients', '4.5.3'],
  ['552 Too many recipients', 'defer', 'too-many-recipients', '4.0.0'],
  ['452 4.5.3 Too many recipients', 'defer', 'too-many-recipients', '4.5.3'],
  ['451 4.5.3 too many recipients for this message', 'defer', 'too-many-recipients', '4.5.3'],
  ['450 4.5.3 Error: too many recipients', 'defer', 'too-many-recipients', '4.5.3'],
  // Full mailboxes: retried.
  ['552 5.2.2 Mailbox full', 'defer', 'mailbox-full', '4.2.2'],
  ['550 5.2.2 The email account that you tried to reach is over quota', 'defer', 'mailbox-full', '4.2.2'],
  ['552 Requested mail action aborted: exceeded storage allocation, quota exceeded', 'defer', 'mailbox-full', '4.0.0'],
  ['552 Mailbox is full', 'defer', 'mailbox-full', '4.0.0'],
  // Unknown recipients: bounced.
  ['550 5.1.1 <bob@example.net>: Recipient address rejected: User unknown in local recipient table', 'bounce', 'recipient', '5.1.1'],
  ['550 5.1.1 The email account that you tried to reach does not exist.', 'bounce', 'recipient', '5.1.1'],
  ['550 No such user here', 'bounce', 'recipient', '5.0.0'],
  ['553 5.1.3 Invalid recipient address syntax', 'bounce', 'recipient', '5.1.3'],
  ['550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup', 'bounce', 'recipient', '5.1.10'],
  // Blocked / policy.
  ['554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org', 'bounce', 'blocked', '5.7.1'],
  ['550 5.7.1 Message rejected due to poor reputation', 'bounce', 'blocked', '5.7.1'],
  ['550 Your IP is listed on a blocklist', 'bounce', 'blocked', '5.0.0'],
  ['550 5.7.26 Unauthenticated email from example.org is not accepted due to domain\'s DMARC policy', 'bounce', 'policy', '5.7.26'],
  ['550 5.7.23 SPF validation failed', 'bounce', 'policy', '5.7.23'],
  ['530 5.7.0 Must issue a STARTTLS command first', 'bounce', 'policy', '5.7.0'],
  // Size.
  ['552 5.3.4 Message size exceeds fixed limit', 'bounce', 'message-size', '5.3.4'],
  ['552 Message too large', 'bounce', 'message-size', '5.0.0'],
  ['554 message is too big', 'bounce', 'message-size', '5.0.0'],
  // Connection-level temporary.
  ['421 4.7.0 Try again later, closing connection', 'defer', 'connection', '4.7.0'],
  ['421 Service not available, closing transmission channel', 'defer', 'connection', '4.0.0'],
  // Other temporary.
  ['450 4.2.0 Greylisted, see http://example/grey', 'defer', 'temporary', '4.2.0'],
  ['451 Local error in processing', 'defer', 'temporary', '4.0.0'],
  ['452 Insufficient system storage', 'defer', 'temporary', '4.0.0'],
  ['454 4.7.0 TLS not available due to local problem', 'defer', 'temporary', '4.7.0'],
  // Other permanent.
  ['550 Mailbox unavailable', 'bounce', 'permanent', '5.0.0'],
  ['554 Transaction failed', 'bounce', 'permanent', '5.0.0'],
  ['551 User not local; please try <forward@example>', 'bounce', 'permanent', '5.0.0'],
  ['500 5.5.1 Command unrecognized', 'bounce', 'permanent', '5.5.1'],
];

describe('classifyReply: reply line → action, category, status', () => {
  it.each(TABLE)('%s → %s / %s / %s', (reply, action, category, status) => {
    const c = classifyReply(reply);
    expect({ action: c.action, category: c.category, status: c.status }).toEqual({ action, category, status });
    expect(c.code).toBe(Number(reply.slice(0, 3)));
    expect(c.response).toBe(reply);
  });

  it('a deferred recipient never carries a 5.x.x status', () => {
    for (const [reply] of TABLE) {
      const c = classifyReply(reply);
      if (c.action === 'defer') expect(c.status, reply).toMatch(/^4\./);
    }
  });

  it('a bounced recipient always carries a 5.x.x status', () => {
    for (const [reply] of TABLE) {
      const c = classifyReply(reply);
      if (c.action === 'bounce') expect(c.status, reply).toMatch(/^5\./);
    }
  });

  it('a 5xx reply that is bounced is reported 5.x.x even when the server sent a 4.x.x enhanced code', () => {
    // RFC 2034 requires the classes to agree; when a server gets it wrong, what we do
    // (bounce: Action: failed in the DSN) decides, as it already does for deferrals.
    const c = classifyReply('550 4.1.1 User unknown');
    expect(c.action).toBe('bounce');
    expect(c.status).toBe('5.1.1');
  });

  it('a 4xx reply carrying a 5.x.x enhanced code is deferred as 4.x.x', () => {
    expect(classifyReply('450 5.1.1 mailbox temporarily unavailable')).toMatchObject({ action: 'defer', status: '4.1.1' });
  });

  it('matching is case-insensitive', () => {
    expect(classifyReply('550 GREYLISTED').action).toBe('defer');
    expect(classifyReply('550 USER UNKNOWN').category).toBe('recipient');
  });

  it('the enhanced code must follow the reply code directly', () => {
    // "5.1.1" later in the text is not the enhanced status code...
    expect(classifyReply('550 rejected: 5.1.1 user unknown').status).toBe('5.0.0');
    // ...but still counts as text for the rules.
    expect(classifyReply('550 rejected: 5.1.1 user unknown').category).toBe('recipient');
    expect(classifyReply('550-5.1.1 user unknown').status).toBe('5.1.1');
  });

  it('reply without enhanced code gets 4.0.0 / 5.0.0', () => {
    expect(classifyReply('450 mailbox busy').status).toBe('4.0.0');
    expect(classifyReply('550 rejected').status).toBe('5.0.0');
    expect(classifyReply('550 rejected').action).toBe('bounce');
    expect(classifyReply('554 try again later').status).toBe('4.0.0');
  });

  it('trims surrounding whitespace and line ends', () => {
    const c = classifyReply('  550 5.1.1 User unknown\r\n');
    expect(c.response).toBe('550 5.1.1 User unknown');
    expect(c.status).toBe('5.1.1');
    expect(c.action).toBe('bounce');
  });

  describe('multi-line replies', () => {
    const gmail = [
      "550-5.1.1 The email account that you tried to reach does not exist. Please try",
      "550-5.1.1 double-checking the recipient's email address for typos or",
      '550-5.1.1 unnecessary spaces. For more information, go to',
      '550 5.1.1  https://support.google.com/mail/?p=NoSuchUser a1si123 - gsmtp',
    ];

    it.each([
      ['LF', '\n'],
      ['CRLF', '\r\n'],
    ])('Gmail unknown user joined with %s', (_name, sep) => {
      const c = classifyReply(gmail.join(sep));
      expect(c).toMatchObject({ action: 'bounce', category: 'recipient', status: '5.1.1', code: 550 });
      expect(c.response).toBe(gmail.join(sep));
    });

    it('Gmail rate limit (421-4.7.0 …)', () => {
      const reply = ['421-4.7.0 [192.0.2.1] Our system has detected an unusual rate of', '421-4.7.0 unsolicited mail originating from your IP address.', '421 4.7.0 To protect our users, try again later.'].join('\n');
      expect(classifyReply(reply)).toMatchObject({ action: 'defer', category: 'connection', status: '4.7.0', code: 421 });
    });

    it('a hint on a later line still matches the rules', () => {
      const reply = '550-5.7.1 Message rejected\n550 5.7.1 Your server is greylisted, try again later';
      expect(classifyReply(reply)).toMatchObject({ action: 'defer', category: 'throttled', status: '4.7.1' });
    });

    it('a blocklist multi-line reply', () => {
      const reply = '554-5.7.1 Service unavailable;\n554-5.7.1 Client host [192.0.2.1]\n554 5.7.1 blocked using zen.spamhaus.org';
      expect(classifyReply(reply)).toMatchObject({ action: 'bounce', category: 'blocked', status: '5.7.1' });
    });
  });

  it('a reply without a reply code is a temporary problem', () => {
    expect(classifyReply('connection reset')).toEqual({ action: 'defer', category: 'temporary', status: '4.0.0', code: undefined, response: 'connection reset' });
    expect(classifyReply('')).toMatchObject({ action: 'defer', status: '4.0.0', code: undefined });
  });

  it('the rules decide in order: the first match wins', () => {
    // Both "try again later" (throttled) and "5.1.1" (recipient): the earlier rule wins.
    expect(classifyReply('550 5.1.1 user unknown, try again later').category).toBe('throttled');
  });

  it('takes a custom rule table', () => {
    const rules: ResponseRule[] = [
      { code: /^550$/, text: /quirky provider/i, action: 'defer', category: 'quirk' },
      { text: /anything/, action: 'bounce', category: 'catch-all' },
    ];
    expect(classifyReply('550 5.1.1 quirky provider says no', rules)).toMatchObject({ action: 'defer', category: 'quirk', status: '4.1.1' });
    // A bounce is always reported with a 5.x.x status, whatever the reply code was.
    expect(classifyReply('450 anything goes', rules)).toMatchObject({ action: 'bounce', category: 'catch-all', status: '5.0.0' });
    // No rule matches: the reply code decides.
    expect(classifyReply('550 other', rules)).toMatchObject({ action: 'bounce', category: 'permanent', status: '5.0.0' });
    expect(classifyReply('451 other', rules)).toMatchObject({ action: 'defer', category: 'temporary', status: '4.0.0' });
    expect(classifyReply('550 other', [])).toMatchObject({ action: 'bounce', category: 'permanent' });
  });

  it('every shipped rule has a known action and a category', () => {
    expect(RESPONSE_RULES.length).toBeGreaterThan(5);
    for (const r of RESPONSE_RULES) {
      expect(['defer', 'bounce']).toContain(r.action);
      expect(r.category).toMatch(/^[a-z-]+$/);
    }
  });
});

describe('classifyLocal', () => {
  it('is always a deferral with the given category and status', () => {
    expect(classifyLocal('tls:certificate-expired', '4.7.5', 'certificate has expired')).toEqual({
      action: 'defer',
      category: 'tls:certificate-expired',
      status: '4.7.5',
      response: 'certificate has expired',
    });
  });
});
