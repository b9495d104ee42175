import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/events/logger.js';
import { DkimSigner } from '../../src/sign/dkim.js';
import { loadDkimKeys } from '../../src/sign/dkim-keys.js';
import { prependHeader } from '../../src/sign/prepend.js';
import { dkimConfig, mailauthVerify, makeDkimKey, opendkimPrograms, opendkimVerify, type TestDkimKey } from '../helpers/dkim.js';

// RFC 6376 §5.4.2, §8.15: h= listed only the fields present, so a relay or a replayer
// could put a second From, Subject, Reply-To or Cc above the signed ones and the
// signature still verified, while mail clients show the top one.

const opendkim = opendkimPrograms();
const rsa = makeDkimKey('client.test', 'rsa1');
const ed = makeDkimKey('client.test', 'ed1', 'ed25519-sha256');

const MESSAGE = Buffer.from(
  ['From: Dr A <dr@client.test>', 'To: patient@dest.test', 'Subject: Results', 'Date: Tue, 01 Dec 2026 10:00:00 +0000', 'Message-ID: <m1@client.test>', 'MIME-Version: 1.0', 'Content-Type: text/plain', '', 'Your results are normal.', ''].join('\r\n'),
);

async function signedWith(keys: TestDkimKey[], raw: Buffer): Promise<Buffer> {
  const signer = new DkimSigner(await loadDkimKeys(validateConfig({ hostname: 'postern.test', dkim: dkimConfig(keys) })), createLogger('silent'));
  const s = await signer.sign(raw, { mailFrom: 'dr@client.test', queueId: 'q1' });
  return prependHeader(s!.header, raw) as Buffer;
}

const hTag = (out: Buffer) => /\bh=([^;]+);/.exec(out.toString('latin1').replace(/\r\n[ \t]+/g, ''))?.[1]?.replace(/\s+/g, '');
const statuses = async (raw: Buffer) => (await mailauthVerify(raw, [rsa, ed])).map((r) => r.status);

describe('DKIM oversigning', () => {
  it('h= names each oversigned field once more than it occurs; the message verifies (rsa and ed25519, mailauth and OpenDKIM)', async () => {
    const out = await signedWith([rsa, ed], MESSAGE);
    expect(hTag(out)).toBe(
      'Content-Type:MIME-Version:Message-ID:Date:Subject:To:From:From:To:Cc:Subject:Reply-To:In-Reply-To:References:MIME-Version:Content-Type:Date:Message-ID',
    );
    expect(await statuses(out)).toEqual(['pass', 'pass']);
    if (opendkim) expect(opendkimVerify(opendkim, await signedWith([rsa], MESSAGE), [rsa])).toEqual({ code: 0, stderr: '' });
  });

  // OpenDKIM refuses outright a second From, To or Subject (RFC 5322 allows one of each):
  // it checks the signature only where the field is added, not doubled.
  const injections: [string, RegExp][] = [
    ['From: CEO <ceo@client.test>', /syntax error/i],
    ['Subject: URGENT: wire transfer', /syntax error/i],
    ['To: other@dest.test', /syntax error/i],
    ['Reply-To: thief@evil.test', /bad signature/i],
    ['Cc: victim@dest.test', /bad signature/i],
  ];
  for (const [added, opendkimSays] of injections) {
    it(`a "${added}" put on top breaks the signature`, async () => {
      const out = await signedWith([rsa, ed], MESSAGE);
      const injected = Buffer.concat([Buffer.from(`${added}\r\n`), out]);
      expect(await statuses(injected)).toEqual(['fail', 'fail']);
      if (opendkim) {
        const r = opendkimVerify(opendkim, Buffer.concat([Buffer.from(`${added}\r\n`), await signedWith([rsa], MESSAGE)]), [rsa]);
        expect(r.code).not.toBe(0);
        expect(r.stderr).toMatch(opendkimSays);
      }
    });
  }

  it('a Date or Message-ID the message lacks is not signed as absent: a relay may add one', async () => {
    const bare = Buffer.from('From: dr@client.test\r\nTo: patient@dest.test\r\nSubject: Results\r\n\r\nnormal\r\n');
    const out = await signedWith([rsa], bare);
    expect(hTag(out)).toBe('Subject:To:From:From:To:Cc:Subject:Reply-To:In-Reply-To:References:MIME-Version:Content-Type');
    const relayed = Buffer.concat([Buffer.from('Message-ID: <added@relay.test>\r\nDate: Tue, 01 Dec 2026 10:00:01 +0000\r\n'), out]);
    expect((await mailauthVerify(relayed, [rsa])).map((r) => r.status)).toEqual(['pass']);
  });
});
