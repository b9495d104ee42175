import type { DeliveryState, Envelope, QueuedMessage } from '../../types.js';

/** A message as the scripts return it: envelope and state JSON as stored in its hash. */
export function decodeMessage(id: string, envelopeJson: unknown, stateJson: unknown): QueuedMessage {
  if (typeof envelopeJson !== 'string' || typeof stateJson !== 'string') throw new Error(`queue: message ${id} lacks its envelope or state in Redis`);
  const envelope = JSON.parse(envelopeJson) as Envelope;
  const state = JSON.parse(stateJson) as DeliveryState;
  if (envelope.id !== id || !Array.isArray(envelope.rcptTo) || !Array.isArray(state.recipients)) throw new Error(`queue: message ${id} has a malformed envelope or state in Redis`);
  return { envelope, state };
}

/** The score of the due set: '' when no recipient is pending (then it is never leased). */
export function dueField(next: number | undefined): string {
  return next === undefined ? '' : String(next);
}
