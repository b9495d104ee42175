import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { harvestCertificates } from '../../src/deliver/harvest-step.js';
import { createLogger } from '../../src/events/logger.js';
import type { Harvester } from '../../src/keys/harvest.js';
import type { QueueBackend } from '../../src/queue/backend.js';
import type { DeliveryState, Envelope } from '../../src/types.js';

/**
 * keys.harvest looks at a message's header fields (is it S/MIME-signed, who is its
 * author) before it reads the whole message. A body read from the spool as a stream had its
 * header block split at the blank line only, while one held in memory was split as
 * receivers split it (protect/header-end.ts): a message sent without the blank line, whose
 * body quotes a signed message, was taken for a signed one from the quoted author.
 */
const message = Buffer.from(
  [
    'To: smith@dest.test',
    'Subject: Fwd: results',
    'Dear Dr Smith, below the message I got:',
    'From: colleague@big.test',
    'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256; boundary="b"',
    '',
    '--b',
    '',
  ].join('\r\n'),
);
const envelope = { id: 'Q1', mailFrom: 'dr.jones@client.test', size: message.length } as unknown as Envelope;
const state = { recipients: [{ rcpt: 'smith@dest.test', attempts: 0 }] } as unknown as DeliveryState;

/** Whom harvest was asked to harvest for, with the message in memory or read from the spool in chunks. */
async function harvestedFor(inMemory: boolean): Promise<string[]> {
  const calls: string[] = [];
  const harvester = { harvest: async (_raw: Buffer, from: string) => void calls.push(from) } as unknown as Harvester;
  const queue = {
    bodyInMemory: () => (inMemory ? message : undefined),
    openBody: async () => Readable.from([message.subarray(0, 30), message.subarray(30)], { objectMode: false }),
  } as unknown as QueueBackend;
  await harvestCertificates({ harvester, maxSize: 1 << 20 }, queue, envelope, state, async () => message, createLogger('silent'));
  return calls;
}

describe('keys.harvest and a message without the blank line after its headers', () => {
  it('a quoted signed message in its body lines is not taken for its own signature, in memory or read from the spool', async () => {
    expect(await harvestedFor(true)).toEqual([]);
    expect(await harvestedFor(false)).toEqual([]);
  });
});
