import { createServer, type Server, type Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { ConnectError, ConnectionPool } from '../../src/deliver/pool.js';
import { selfSigned } from '../helpers/pki.js';

/**
 * Next hops that misbehave at the edges of a connection, on real sockets: the pool
 * reports each as a connection failure to its caller, and none of them may reach the
 * process as an 'error' event nobody listens to (vitest fails the run on one, as Node
 * would end the gateway).
 */

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

async function listen(onSocket: (s: Socket) => void): Promise<number> {
  const server = createServer((s) => {
    s.on('error', () => undefined);
    onSocket(s);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as { port: number }).port;
}

/** Lines of SMTP from a socket (either side of STARTTLS). */
function onLines(s: Socket, handle: (line: string) => void): void {
  let rest = '';
  s.on('data', (d: Buffer) => {
    rest += d.toString('latin1');
    let i;
    while ((i = rest.indexOf('\r\n')) !== -1) {
      const line = rest.slice(0, i);
      rest = rest.slice(i + 2);
      handle(line);
    }
  });
}

/**
 * An MX offering STARTTLS with a certificate Postern does not trust; after the
 * handshake it answers EHLO, then treats QUIT as `onQuit` says.
 */
function untrustedMx(onQuit: 'reset' | 'ignore'): Promise<number> {
  const { cert, key } = selfSigned('mx.faults.test');
  return listen((raw) => {
    raw.write('220 mx.faults.test ESMTP\r\n');
    onLines(raw, (line) => {
      if (/^EHLO/i.test(line)) raw.write('250-mx.faults.test\r\n250 STARTTLS\r\n');
      else if (/^STARTTLS/i.test(line)) {
        raw.removeAllListeners('data');
        raw.write('220 2.0.0 go ahead\r\n');
        const tls = new TLSSocket(raw, { isServer: true, cert, key });
        tls.on('error', () => undefined);
        onLines(tls, (l) => {
          if (/^EHLO/i.test(l)) tls.write('250-mx.faults.test\r\n250 8BITMIME\r\n');
          else if (/^QUIT/i.test(l) && onQuit === 'reset') raw.resetAndDestroy();
        });
      }
    });
  });
}

function pool(timeouts: { connect?: number; greeting?: number; socket?: number } = {}, maxConnectionsPerHost = 10): ConnectionPool {
  const config = validateConfig({ hostname: 'gw.test', delivery: { timeouts: { connect: 5000, greeting: 5000, socket: 5000, ...timeouts }, pool: { maxConnectionsPerHost } } });
  return new ConnectionPool(config, pino({ level: 'silent' }));
}

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('connection pool: misbehaving next hops', () => {
  it.each(['reset', 'ignore'] as const)('verify not met, then the host answers QUIT with %s: the caller gets the TLS failure and nothing else is thrown', async (onQuit) => {
    const port = await untrustedMx(onQuit);
    // A short socket timeout so that the ignored QUIT times out within the test.
    const p = pool({ socket: 300 });
    const err = await p.acquire({ address: '127.0.0.1', port, name: 'mx.faults.test', tls: 'verify' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).message).toMatch(/TLS level verify not met by mx\.faults\.test/);
    // The reset, or the socket timeout of the unanswered QUIT, comes after acquire() failed.
    await settle(800);
  });

  it.each(['may', 'verify'] as const)('a host that closes before its greeting (tls: %s) is a connection failure, not a connection, and not a missing STARTTLS', async (tls) => {
    const port = await listen((s) => s.end());
    const p = pool();
    const err = await p.acquire({ address: '127.0.0.1', port, name: `closes-${tls}.faults.test`, tls }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).tlsFailure).toBeUndefined();
    expect((err as ConnectError).message).toMatch(/closed/i);
    // What the host offers is unknown: nothing may be recorded against its TLS.
    expect(p.capabilities.get(`closes-${tls}.faults.test`, port)).toBeUndefined();
  });

  it('when every open to a host fails, callers that waited for a free place are not left waiting', async () => {
    let accepted = 0;
    const port = await listen((s) => {
      accepted++;
      s.end();
    });
    const p = pool({}, 2);
    const target = { address: '127.0.0.1', port, name: 'dead.faults.test', tls: 'may' as const };
    // Five callers for two places: three wait, and each must get its own answer.
    const outcomes = await Promise.all(Array.from({ length: 5 }, () => p.acquire(target).then(() => 'connected', (e: unknown) => (e instanceof ConnectError ? 'refused' : String(e)))));
    expect(outcomes).toEqual(['refused', 'refused', 'refused', 'refused', 'refused']);
    expect(accepted).toBe(5);
  });
});
