import { describe, expect, it } from 'vitest';
import { parseMessage } from '../../src/inspect/parse.js';
import { explainMessage } from '../../src/policy/explain-message.js';

describe('the message policy explain inspects', () => {
  it('is made of From, To and Subject when no message is given', async () => {
    const raw = explainMessage({ from: 'a@clinic.example', to: ['b@x.example', 'c@y.example'], subject: 'Résultats\r\nBcc: evil@x.example' });
    const parsed = await parseMessage(raw);
    expect(parsed.subject).toBe('Résultats Bcc: evil@x.example'); // one line: no header injected
    expect(parsed.headers.bcc).toBeUndefined();
    expect(parsed.headers.to).toEqual(['b@x.example, c@y.example']);
  });

  it("replaces a message's subject (folded or not, any case of the field name), keeping everything else", async () => {
    for (const eol of ['\r\n', '\n']) {
      const message = Buffer.from(['From: a@clinic.example', 'SUBJECT: old', '  folded part', 'X-Keep: yes', '', 'Body with SSN-free text', ''].join(eol));
      const parsed = await parseMessage(explainMessage({ from: 'x', to: ['y'], subject: 'new one', message }));
      expect(parsed.subject).toBe('new one');
      expect(parsed.headers['x-keep']).toEqual(['yes']);
      expect(parsed.headers.subject).toEqual(['new one']);
      expect(parsed.texts.find((t) => t.source === 'text')?.text).toContain('Body with SSN-free text');
    }
  });

  it('leaves a message as it is without a subject, and adds one to a message without a header', async () => {
    const message = Buffer.from('Subject: kept\r\n\r\nbody\r\n');
    expect(explainMessage({ from: 'x', to: ['y'], message })).toBe(message);
    const parsed = await parseMessage(explainMessage({ from: 'x', to: ['y'], subject: 'added', message: Buffer.from('\r\nonly a body\r\n') }));
    expect([parsed.subject, parsed.texts.find((t) => t.source === 'text')?.text]).toEqual(['added', 'only a body\r\n']);
  });
});
