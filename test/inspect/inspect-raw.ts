import { detectorsConfigSchema } from '../../src/inspect/detectors/index.js';
import { inspectMessage } from '../../src/inspect/inspector.js';
import { DEFAULT_INSPECT_LIMITS, type InspectLimits } from '../../src/inspect/parse.js';

/** The default detectors, as the gateway ships them. */
export const detectors = detectorsConfigSchema.parse({});

/** A message written with \n line ends, sent with CRLF as SMTP carries it (UTF-8). */
export const crlf = (text: string): Buffer => Buffer.from(text.replace(/\r?\n/g, '\r\n'));

/**
 * What the gateway's inspection entry point (inspectMessage) makes of a whole message:
 * the detectors that fired, and whether it was complete.
 */
export async function inspectRaw(raw: Buffer, limits: InspectLimits = DEFAULT_INSPECT_LIMITS): Promise<{ hits: string[]; error?: string | undefined; unscanned?: string | undefined }> {
  const facts = await inspectMessage(raw, raw.length, detectors, limits);
  return { hits: facts.detectors.hits.map((h) => h.detector), error: facts.error, unscanned: facts.unscanned };
}
