import { EVENTS, type Logger } from '../events/logger.js';
import type { PortalDelivery } from '../portal/deliver.js';
import type { DeliveryState, Envelope } from '../types.js';
import { localOutcomes, type Outcome } from './outcome.js';

/**
 * The portal step of an attempt: the recipients the plan sent to the portal, and those
 * whose TLS or encryption failed when their decision allows the portal (the fallback),
 * are stored and notified. Returns the attempt's outcomes with the fallback ones replaced
 * by their portal outcomes. Never throws: the other recipients may be delivered already,
 * so a failing portal store (or body read) defers only the portal recipients.
 */
export async function portalStep(
  o: { portal: PortalDelivery | undefined; log: Logger },
  envelope: Envelope,
  state: DeliveryState,
  sent: Outcome[],
  planned: string[],
  raw: () => Promise<Buffer>,
): Promise<{ outcomes: Outcome[]; portal: Outcome[] }> {
  const { portal, log } = o;
  const byRcpt = new Map(state.recipients.map((r) => [r.rcpt, r]));
  const fallback = sent.filter((out) => {
    const d = byRcpt.get(out.rcpt)?.decision;
    const moveable = out.category.startsWith('tls:') || out.category === 'protect';
    return out.result === 'defer' && moveable && d && (d.candidates.includes('portal') || d.onNoMethod === 'portal') && portal?.canServe(out.rcpt);
  });
  const toPortal = [
    ...planned.map((rcpt) => ({ rcpt, why: `policy ${byRcpt.get(rcpt)?.decision?.ruleId ?? ''} chose the portal` })),
    ...fallback.map((f) => ({ rcpt: f.rcpt, why: f.category === 'protect' ? `${f.response}: moved to the portal` : `TLS ${f.relay ? `to ${f.relay} ` : ''}failed (${f.category.slice(4)}): moved to the portal` })),
  ];
  if (!toPortal.length || !portal) return { outcomes: sent, portal: [] };
  for (const f of fallback) log.warn({ event: EVENTS.portalFallback, queueId: envelope.id, to: f.rcpt, relay: f.relay, reason: f.category, response: f.response }, f.category === 'protect' ? 'encryption failed: recipient moved to the portal' : 'TLS failed: recipient moved to the portal');
  const expiries = toPortal.map((p) => byRcpt.get(p.rcpt)?.decision?.portalExpiryMs).filter((x): x is number => x !== undefined);
  const rcpts = toPortal.map((p) => p.rcpt);
  let results;
  try {
    // A policy rule's own portal settings for its recipients (else portal.* applies).
    const settings = new Map(rcpts.map((rcpt) => [rcpt, { showSubject: byRcpt.get(rcpt)?.decision?.portalShowSubject, readReceipts: byRcpt.get(rcpt)?.decision?.portalReadReceipts }]));
    results = await portal.deliver(envelope, state, await raw(), rcpts, toPortal.map((p) => p.why).join('; '), expiries.length ? Math.min(...expiries) : undefined, settings);
  } catch (err) {
    log.error({ event: EVENTS.deliveryError, queueId: envelope.id, to: rcpts, err: (err as Error).message }, 'portal delivery failed');
    results = localOutcomes(rcpts, { result: 'defer', status: '4.3.0', response: `portal delivery failed: ${(err as Error).message}`, category: 'portal' });
  }
  for (const p of results) {
    const r = byRcpt.get(p.rcpt);
    if (r?.decision && p.result === 'delivered') r.decision = { ...r.decision, method: 'portal' };
  }
  const asOutcomes = results.map((p): Outcome => ({ ...p, diagnosticType: 'x-postern', route: undefined }));
  return { outcomes: [...sent.filter((s) => !fallback.includes(s)), ...asOutcomes], portal: asOutcomes };
}
