import { createServer, type Server, type Socket } from 'node:net';
import { createSecureContext, TLSSocket } from 'node:tls';
import { afterAll, describe, expect, it } from 'vitest';
import { selfSigned } from '../helpers/pki.js';
import { scenario } from '../helpers/scenario.js';
import { sendMail, testMessage } from '../helpers/smtp-client.js';

/**
 * A next hop that offers STARTTLS but whose handshake fails: an old appliance that speaks
 * only TLS 1.0/1.1 (OpenSSL 3 at its default security level negotiates nothing below 1.2).
 * nodemailer reports the alert as a socket error, which was taken for a connection that
 * failed: `may` never fell back to plaintext, and `encrypt` logged 4.4.1, not a TLS failure.
 */
class OldTlsMx {
  readonly server: Server;
  received = 0;
  private readonly context = createSecureContext({ ...selfSigned('mx.old.test'), minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' });

  constructor() {
    this.server = createServer((socket) => this.session(socket));
  }

  async start(): Promise<number> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    return (this.server.address() as { port: number }).port;
  }

  private session(socket: Socket): void {
    let buffered = '';
    let inData = false;
    socket.on('error', () => undefined);
    socket.write('220 mx.old.test ESMTP\r\n');
    const onData = (d: Buffer) => {
      buffered += d.toString('latin1');
      for (let i = buffered.indexOf('\r\n'); i !== -1; i = buffered.indexOf('\r\n')) {
        const line = buffered.slice(0, i);
        buffered = buffered.slice(i + 2);
        if (inData) {
          if (line === '.') {
            inData = false;
            this.received++;
            socket.write('250 stored\r\n');
          }
          continue;
        }
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'EHLO') socket.write('250-mx.old.test\r\n250 STARTTLS\r\n');
        else if (verb === 'STAR') {
          socket.write('220 go ahead\r\n');
          socket.removeListener('data', onData);
          new TLSSocket(socket, { isServer: true, secureContext: this.context }).on('error', () => undefined);
          return;
        } else if (verb === 'DATA') {
          inData = true;
          socket.write('354 go ahead\r\n');
        } else if (verb === 'QUIT') socket.end('221 bye\r\n');
        else socket.write('250 ok\r\n');
      }
    };
    socket.on('data', onData);
  }
}

describe('a TLS handshake that fails after STARTTLS', () => {
  const s = scenario();
  const mx = new OldTlsMx();
  afterAll(() => new Promise<void>((r) => mx.server.close(() => r())));

  it('may: the message goes in clear on a new connection, as documented; encrypt: deferred as a TLS failure (4.7.5), nothing sent', async () => {
    const port = await mx.start();
    const gw = await s.gateway({ delivery: { routes: { 'may.test': { nexthop: `127.0.0.1:${port}`, tls: 'may' }, 'encrypt.test': { nexthop: `127.0.0.1:${port}`, tls: 'encrypt' } } } });
    expect((await sendMail(gw.port, { from: 'sender@client.test', to: ['a@encrypt.test'], raw: testMessage({ to: 'a@encrypt.test' }) })).ok).toBe(true);
    const deferred = await gw.waitForLog((l) => (l.event === 'delivery.deferred' || l.event === 'delivery.sent') && l.to === 'a@encrypt.test');
    expect(deferred).toMatchObject({ event: 'delivery.deferred', dsn: '4.7.5', category: 'tls:validation-failure' });
    expect(mx.received).toBe(0);
    expect((await sendMail(gw.port, { from: 'sender@client.test', to: ['b@may.test'], raw: testMessage({ to: 'b@may.test' }) })).ok).toBe(true);
    const sent = await gw.waitForLog((l) => (l.event === 'delivery.sent' || l.event === 'delivery.deferred') && l.to === 'b@may.test');
    expect(sent).toMatchObject({ event: 'delivery.sent' });
    expect(mx.received).toBe(1);
  });
});
