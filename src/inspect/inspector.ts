import type { Readable } from 'node:stream';
import type { MessageFacts } from '../types.js';
import { runDetectors, type DetectorsConfig } from './detectors/index.js';
import { DEFAULT_INSPECT_LIMITS, parseMessage, type InspectLimits } from './parse.js';

/** Facts about one message: the parse, then the detectors over its text. */
export async function inspectMessage(body: Readable | Buffer, size: number, detectors: DetectorsConfig, limits: InspectLimits = DEFAULT_INSPECT_LIMITS): Promise<MessageFacts> {
  const parsed = await parseMessage(body, limits);
  const found = runDetectors(parsed.texts, detectors);
  return {
    subject: parsed.subject,
    from: parsed.from,
    messageId: parsed.messageId,
    headers: parsed.headers,
    attachments: parsed.attachments,
    size,
    parts: parsed.parts,
    detectors: found,
    error: parsed.error,
  };
}
