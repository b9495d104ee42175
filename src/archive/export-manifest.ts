import { createHash } from 'node:crypto';
import type { ItemMeta } from './types.js';

/** One exported message in a manifest (zip manifest.json, mbox sidecar): what it is and the SHA-256 of its original bytes. */
export interface ManifestEntry {
  id: string;
  receivedAt: string;
  from: string;
  to: string[];
  subject: string;
  messageId?: string | undefined;
  size: number;
  sha256: string;
}

export function manifestEntry(meta: ItemMeta, size: number, sha256: string): ManifestEntry {
  return { id: meta.id, receivedAt: new Date(meta.receivedAt).toISOString(), from: meta.mailFrom, to: meta.rcptTo, subject: meta.subject, messageId: meta.messageId, size, sha256 };
}

export const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/** What an export says of itself when the search behind it was incomplete (--allow-partial). */
export const incompleteNote = (reasons: string[]): string => `This export is INCOMPLETE: the search behind it may have missed messages.\n${reasons.map((r) => `- ${r}\n`).join('')}`;
