import { simpleParser } from 'mailparser';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import type { PortalRcptSettings } from '../../src/portal/deliver.js';
import type { DeliveryState, Envelope } from '../../src/types.js';
import { testConfigInput } from '../helpers/gateway.js';
import { portalApps, type PortalApp } from '../helpers/portal-app.js';

const DAY = 86_400_000;
const ORIGINAL = Buffer.from('From: "Dr. Ada O’Neil & Partners" <dr.carter@clinic.test>\r\nTo: pat@home.test\r\nSubject: HIV test result\r\n\r\nConfidential body.\r\n');
const LOGO = 'https://assets.clinic.example/logo.png';

/** Stores ORIGINAL for pat@home.test through the portal method; returns the notice as a mail client reads it. */
async function notice(portal: PortalApp, expiryMs?: number, settings?: PortalRcptSettings) {
  const envelope = { id: 'Q1', mailFrom: 'dr.carter@clinic.test' } as Envelope;
  const state: DeliveryState = { recipients: [] } as unknown as DeliveryState;
  const [outcome] = await portal.delivery.deliver(envelope, state, ORIGINAL, ['pat@home.test'], 'test', expiryMs, new Map(settings ? [['pat@home.test', settings]] : []));
  expect(outcome).toMatchObject({ result: 'delivered' });
  const raw = portal.queued.at(-1)!.raw;
  const parsed = await simpleParser(raw);
  const token = /\/m\/([A-Za-z0-9_-]{43})/.exec(parsed.text ?? '')?.[1] as string;
  return { raw: raw.toString(), parsed, token, messageId: state.portalMessageId as string };
}

describe('portal notices', () => {
  const start = portalApps();
  afterEach(() => {
    vi.useRealTimers();
  });

  it('carry the organisation, its logo and text and the sender\'s name; the subject only with showSubject', async () => {
    let portal = await start({ portal: { organisation: { name: 'St. Elsewhere Clinic', logoUrl: LOGO, noticeText: 'Open it within 30 days.' } } });
    const { parsed, raw } = await notice(portal);
    expect(parsed.from?.value[0]).toMatchObject({ name: 'St. Elsewhere Clinic' });
    expect(parsed.subject).toBe('Secure message from Dr. Ada O’Neil & Partners');
    expect(parsed.text).toContain('Dr. Ada O’Neil & Partners sent you a secure message.');
    expect(parsed.text).toContain('Open it within 30 days.');
    expect(parsed.text).toContain('St. Elsewhere Clinic');
    expect(parsed.html).toContain(`<img src="${LOGO}" alt="St. Elsewhere Clinic"`);
    expect(parsed.html).toContain('Dr. Ada O’Neil &amp; Partners sent you a secure message.');
    expect(raw).not.toContain('HIV');
    expect(raw).not.toContain('Confidential body');

    portal = await start({ portal: { showSubject: true } });
    expect((await notice(portal)).parsed.subject).toBe('Secure message: HIV test result');
    // A policy rule's portalShowSubject decides for its recipients, either way.
    expect((await notice(portal, undefined, { showSubject: false })).parsed.subject).toBe('Secure message from Dr. Ada O’Neil & Partners');
    portal = await start();
    expect((await notice(portal, undefined, { showSubject: true })).parsed.subject).toBe('Secure message: HIV test result');
  });

  it('follow portal.organisation.noticeTemplate (text and HTML), values escaped in the HTML', async () => {
    const portal = await start({
      portal: {
        organisation: {
          name: 'St. Elsewhere Clinic',
          logoUrl: LOGO,
          noticeTemplate: {
            text: 'Hello,\n{{sender}} at {{organisation}} sent you something.\n{{noticeText}}\nOpen: {{link}}\nSubject: [{{subject}}]',
            html: '<p><img src="{{logoUrl}}" alt=""> {{ organisation }}</p><p>From {{sender}}</p><a href="{{link}}">Read it</a>',
          },
        },
      },
    });
    const { parsed, token } = await notice(portal);
    expect(token).toBeTruthy();
    expect(parsed.text).toContain('Dr. Ada O’Neil & Partners at St. Elsewhere Clinic sent you something.');
    expect(parsed.text).toMatch(/Open: https:\/\/postern\.test:\d+\/m\/[A-Za-z0-9_-]{43}/);
    expect(parsed.text).toContain('Subject: []'); // showSubject is off
    expect(parsed.html).toContain(`<p><img src="${LOGO}" alt=""> St. Elsewhere Clinic</p><p>From Dr. Ada O’Neil &amp; Partners</p><a href="https://postern.test:`);
    // A reset mail keeps its own wording.
    await portal.delivery.sendReset('pat@home.test');
    expect((await simpleParser(portal.queued.at(-1)!.raw)).text).toContain('Set a new password');
  });

  it('a template without the link, or with an unknown placeholder, is refused at load, naming the key', () => {
    const load = (noticeTemplate: Record<string, string>) => () => validateConfig(testConfigInput('/tmp/x', { portal: { organisation: { noticeTemplate } } }));
    expect(load({ text: 'Hello {{sender}}' })).toThrow(/portal\.organisation\.noticeTemplate\.text: must contain \{\{link\}\}/);
    expect(load({ html: '<a href="{{link}}">{{patientName}}</a>' })).toThrow(/portal\.organisation\.noticeTemplate\.html: unknown placeholder \{\{patientName\}\}; use \{\{organisation\}\}/);
  });

  it('the link works as long as the message is kept, also when a rule keeps it longer than portal.expiry', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const portal = await start({ portal: { expiry: '1d' } });
    const { token, messageId } = await notice(portal, 3 * DAY);
    const message = await portal.files.get(messageId);
    expect(message!.expiresAt - message!.createdAt).toBe(3 * DAY);
    expect((await portal.files.getToken(token))?.expiresAt).toBe(message!.expiresAt);
    vi.advanceTimersByTime(2 * DAY); // past portal.expiry, within the rule's
    expect((await portal.app.inject({ method: 'GET', url: `/m/${token}` })).body).toContain('Set your password');
    vi.advanceTimersByTime(DAY + 1000);
    expect((await portal.app.inject({ method: 'GET', url: `/m/${token}` })).statusCode).toBe(404);
  });
});
