import type { Readable } from 'node:stream';
import type { MessageFacts } from '../types.js';
import { exceedsScanBudget, runDetectors, type DetectorsConfig } from './detectors/index.js';
import { DEFAULT_INSPECT_LIMITS, InspectLimitError, InspectTimeoutError, parseMessage, type InspectLimits } from './parse.js';

/**
 * Facts about one message: the parse, then the detectors over its text, both within
 * one deadline (limits.timeoutMs): a scan that runs out of time is an inspection error,
 * as a parse that does.
 */
export async function inspectMessage(body: Readable | Buffer, size: number, detectors: DetectorsConfig, limits: InspectLimits = DEFAULT_INSPECT_LIMITS): Promise<MessageFacts> {
  const deadline = Date.now() + limits.timeoutMs;
  // The parse keeps as much text as the detectors are configured to scan: raising
  // detectors.maxScanBytes raises both.
  const parsed = await parseMessage(body, { ...limits, maxTextBytes: detectors.maxScanBytes });
  if (exceedsScanBudget(parsed.texts, detectors)) {
    parsed.unscanned ??= `message text exceeds detectors.maxScanBytes (${detectors.maxScanBytes}): the rest was not scanned`;
  }
  let found: MessageFacts['detectors'] = { hits: [], score: 0, categories: [] };
  try {
    found = runDetectors(parsed.texts, detectors, deadline);
  } catch (err) {
    if (!(err instanceof InspectLimitError)) throw err;
    if (!parsed.error) {
      parsed.error = `${err.message} (${limits.timeoutMs} ms)`;
      parsed.timedOut = err instanceof InspectTimeoutError;
    }
  }
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
    timedOut: parsed.timedOut,
    unscanned: parsed.unscanned,
  };
}
