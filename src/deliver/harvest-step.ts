import { EVENTS, type Logger } from '../events/logger.js';
import { isSmimeSigned, type Harvester } from '../keys/harvest.js';
import type { QueueBackend } from '../queue/backend.js';
import { headerBlockOf } from '../sign/peek-headers.js';
import { senderAddress } from '../sign/sender-domain.js';
import type { DeliveryState, Envelope } from '../types.js';
import { readHeaderBlock } from './dsn.js';

export interface HarvestStep {
  harvester: Harvester;
  /** Messages above this are not read whole for it (protect.smime.maxSize). */
  maxSize: number;
}

/**
 * keys.harvest: on a message's first attempt, when its headers say it is S/MIME-signed,
 * the signer's certificate may be stored (see keys/harvest.ts). Only the header block is
 * read for any other message. Never fails the delivery: a problem is logged.
 */
export async function harvestCertificates(step: HarvestStep, queue: QueueBackend, envelope: Envelope, state: DeliveryState, raw: () => Promise<Buffer>, log: Logger): Promise<void> {
  if (envelope.origin || envelope.size > step.maxSize || state.recipients.some((r) => r.attempts > 0)) return;
  try {
    const inMemory = queue.bodyInMemory?.(envelope.id);
    const head = inMemory ? headerBlockOf(inMemory) : (await readHeaderBlock(await queue.openBody(envelope.id))).toString('latin1');
    if (!isSmimeSigned(head)) return;
    await step.harvester.harvest(await raw(), senderAddress(head, envelope.mailFrom), envelope.id);
  } catch (err) {
    log.warn({ event: EVENTS.keySkipped, queueId: envelope.id, kind: 'smime', reason: `harvest failed: ${(err as Error).message}` }, 'certificate harvest failed');
  }
}
