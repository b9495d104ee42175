import { describe, expect, it } from 'vitest';
import { nullSenderFromRefusal } from '../../src/ingress/null-sender-from.js';

const A = [['tenant-a.test', '*.tenant-a.test', 'xn--bcher-kva.example']];
/** A From field as HeaderScanner.fields() gives it: UTF-8 bytes read as latin1. */
const from = (value: string): [string, string] => ['from', Buffer.from(value, 'utf8').toString('latin1')];
const refusal = (fields: [string, string][], binding = A) => nullSenderFromRefusal(fields, binding)?.message;

describe('nullSenderFromRefusal', () => {
  it('a From in the sender domains, in any spelling, passes', () => {
    for (const v of ['pat@tenant-a.test', 'Pat <PAT@Tenant-A.TEST>', 'x@mail.tenant-a.test', 'Jörg <j@bücher.example>', 'j@xn--bcher-kva.example', 'a@tenant-a.test.']) expect(refusal([from(v)])).toBeUndefined();
  });

  it('names the first From domain outside them', () => {
    expect(refusal([from('ceo@tenant-b.test')])).toBe('5.7.1 From domain tenant-b.test is not permitted for this client with the null sender <>');
    expect(refusal([from('a@tenant-a.test, b@tenant-c.test')])).toMatch(/From domain tenant-c\.test /);
    expect(refusal([from('a@tenant-a.test'), from('b@tenant-d.test')])).toMatch(/From domain tenant-d\.test /);
    expect(refusal([from('MAILER-DAEMON')])).toMatch(/From domain \(none\) /);
  });

  it('no From address at all is refused', () => {
    for (const fields of [[], [from('Undisclosed:;')], [['subject', 'x'] as [string, string]]]) expect(refusal(fields)).toMatch(/must have a From address/);
  });

  it('every list of the binding must hold the domain (network rule and AUTH user)', () => {
    expect(refusal([from('a@tenant-a.test')], [['tenant-a.test'], ['*']])).toBeUndefined();
    expect(refusal([from('a@tenant-a.test')], [['tenant-a.test'], ['other.test']])).toMatch(/From domain tenant-a\.test /);
  });
});
