import { describe, expect, it } from 'vitest';
import { decideSmtpUtf8, type Utf8Facts } from '../../src/deliver/smtputf8.js';
import { applySmtpUtf8Param, withParam } from '../../src/deliver/smtputf8-param.js';

const facts = (requested: boolean, address: boolean, header: boolean): Utf8Facts => ({ requested, address, header });

describe('decideSmtpUtf8 (as Postfix decides)', () => {
  it.each([
    // requested, address, header, offered → action, reason
    [false, false, false, true, undefined, undefined],
    [false, false, false, false, undefined, undefined],
    [true, false, false, true, 'smtputf8', 'requested'],
    [false, false, true, true, 'smtputf8', 'header'],
    [true, false, true, true, 'smtputf8', 'requested'],
    [false, true, false, true, 'smtputf8', 'address'],
    [false, true, false, false, 'refuse', 'address'],
    [true, true, true, false, 'refuse', 'address'],
    [true, false, true, false, 'refuse', 'header'],
    [true, false, false, false, 'without', 'not-needed'],
    [false, false, true, false, 'without', 'not-requested'],
  ] as const)('requested %s, address %s, header %s, offered %s → %s (%s)', (requested, address, header, offered, action, reason) => {
    const d = decideSmtpUtf8(facts(requested, address, header), offered, 'mx.dest.test');
    expect(d?.action).toBe(action);
    expect(d?.reason).toBe(reason);
  });

  it('a refusal is a permanent 5.6.7 naming the next hop', () => {
    const d = decideSmtpUtf8(facts(true, false, true), false, 'mx.dest.test');
    expect(d).toMatchObject({ action: 'refuse', response: expect.stringMatching(/^554 5\.6\.7 SMTPUTF8 is required .*mx\.dest\.test$/) });
    expect(decideSmtpUtf8(facts(false, true, false), false, 'mx.dest.test')).toMatchObject({ response: expect.stringMatching(/^553 5\.6\.7 /) });
  });
});

describe('the SMTPUTF8 parameter on MAIL FROM', () => {
  it('goes first among the parameters, once', () => {
    expect(withParam('MAIL FROM:<a@b.test>')).toBe('MAIL FROM:<a@b.test> SMTPUTF8');
    expect(withParam('MAIL FROM:<a@b.test> BODY=8BITMIME SIZE=100')).toBe('MAIL FROM:<a@b.test> SMTPUTF8 BODY=8BITMIME SIZE=100');
    expect(withParam('MAIL FROM:<> SIZE=100')).toBe('MAIL FROM:<> SMTPUTF8 SIZE=100');
    expect(withParam('MAIL FROM:<pä@b.test> SMTPUTF8 SIZE=100')).toBe('MAIL FROM:<pä@b.test> SMTPUTF8 SIZE=100');
  });

  it('the patch applies to the nodemailer installed (its shape is checked)', () => {
    expect(() => applySmtpUtf8Param()).not.toThrow();
  });
});
