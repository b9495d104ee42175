import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { testMessage } from './smtp-client.js';

export interface LoadTally {
  /** X-Test-Id of every message that got 250. */
  acked: Set<string>;
  /** The server's reply to each message refused with a code (e.g. "451 4.3.0 ..."). */
  refused: string[];
}

/**
 * One SMTP connection sending numbered messages (each with an X-Test-Id header) until
 * `next` says stop or the connection dies; a refused message is counted and the next one
 * tried on the same connection.
 */
export async function sendNumbered(port: number, next: () => number | undefined, tally: LoadTally, onAck: () => void = () => undefined, prefix = 'load'): Promise<void> {
  const conn = new SMTPConnection({ host: '127.0.0.1', port, ignoreTLS: true, logger: false, socketTimeout: 10_000 } as ConstructorParameters<typeof SMTPConnection>[0]);
  conn.on('error', () => undefined);
  try {
    await new Promise<void>((resolve, reject) => {
      conn.once('error', reject);
      conn.connect(() => resolve());
    });
  } catch {
    return;
  }
  for (let n = next(); n !== undefined; n = next()) {
    const id = `${prefix}-${n}@client.test`;
    const result = await new Promise<'ok' | 'refused' | 'dead'>((resolve) =>
      conn.send({ from: 'sender@client.test', to: [`r${n % 7}@dest.test`] }, testMessage({ extraHeaders: [`X-Test-Id: ${id}`] }), (err) => {
        if (!err) return resolve('ok');
        const { responseCode, response } = err as { responseCode?: number; response?: string };
        if (!responseCode) return resolve('dead');
        tally.refused.push(response ?? `${responseCode} ${err.message}`);
        resolve('refused');
      }),
    );
    if (result === 'dead') break;
    if (result === 'ok') {
      tally.acked.add(id);
      onAck();
    }
  }
  conn.close();
}

/** The X-Test-Id of every message a receiving MX got, in order (repeats included). */
export function testIdsOf(messages: { raw: Buffer }[]): string[] {
  return messages.map((m) => /X-Test-Id: (\S+)/.exec(m.raw.toString())?.[1] ?? '');
}
