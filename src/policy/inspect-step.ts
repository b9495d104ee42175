import { EVENTS, type Logger } from '../events/logger.js';
import type { DetectorsConfig } from '../inspect/detectors/index.js';
import { inspectMessage } from '../inspect/inspector.js';
import type { QueueBackend } from '../queue/backend.js';
import type { DeliveryState, Envelope, MessageFacts } from '../types.js';
import { hasSubjectTag } from './match.js';

/**
 * Inspects a message for its first decisions (once: the summary is kept with the
 * delivery state, the facts are not) and logs what was found — names and counts only.
 */
export async function inspectForPolicy(o: { queue: QueueBackend; detectors: DetectorsConfig; subjectTag: string; log: Logger }, envelope: Envelope, state: DeliveryState): Promise<MessageFacts> {
  const body = o.queue.bodyInMemory?.(envelope.id) ?? (await o.queue.openBody(envelope.id));
  const facts = await inspectMessage(body, envelope.size, o.detectors);
  state.inspection = {
    score: facts.detectors.score,
    categories: facts.detectors.categories,
    hits: facts.detectors.hits,
    subjectTagged: hasSubjectTag(facts.subject, o.subjectTag),
    error: facts.error,
    timedOut: facts.timedOut,
    unscanned: facts.unscanned,
  };
  if (o.log.isLevelEnabled('info')) {
    o.log.info(
      {
        event: EVENTS.inspected,
        queueId: envelope.id,
        // The Message-ID header: `postern trace <message-id>` finds the message by it.
        messageId: facts.messageId,
        parts: facts.parts,
        attachments: facts.attachments.length,
        detectors: facts.detectors.hits.map((h) => ({ detector: h.detector, count: h.count })),
        score: facts.detectors.score,
        subjectTagged: state.inspection.subjectTagged,
        error: facts.error,
        unscanned: facts.unscanned,
      },
      facts.error ? 'inspection failed' : 'inspected',
    );
  }
  return facts;
}
