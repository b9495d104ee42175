import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { spoolShardDir } from '../../src/queue/fs/shards.js';
import { runCli } from '../helpers/cli.js';
import { closedPort } from '../helpers/closed-port.js';
import { testConfigInput, writeConfigFile, type LogLine } from '../helpers/gateway.js';

/** The JSON log lines a finished `postern start` wrote to stdout. */
const logLines = (stdout: string): LogLine[] => stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LogLine);

/** A config file with its own dataDir (not made until the gateway makes it). */
function configIn(dir: string, overrides: Record<string, unknown>): { file: string; dataDir: string } {
  const caseDir = mkdtempSync(join(dir, 'case-'));
  const dataDir = join(caseDir, 'data');
  return { file: writeConfigFile(caseDir, testConfigInput(dataDir, { workers: 1, log: { level: 'info' }, ...overrides })), dataDir };
}

const listenAt = (setting: string, address: string): Record<string, unknown> =>
  setting === 'smtp.listen' ? { smtp: { listen: [address] } } : { [setting.split('.')[0] as string]: { listen: address } };

describe('postern start: a listener address that cannot be had', () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-start-listen-'));
  const blockers: Server[] = [];
  afterAll(() => {
    for (const b of blockers) b.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A port on 127.0.0.1 held by another listener for the rest of the file. */
  const takenPort = async (): Promise<number> => {
    const port = await closedPort();
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', resolve));
    blockers.push(blocker);
    return port;
  };

  it.each(['smtp.listen', 'portal.listen', 'admin.listen'])('%s in use: the key and the address in the log line and on stderr, exit 1, nothing started', async (setting) => {
    const port = await takenPort();
    const c = configIn(dir, listenAt(setting, `127.0.0.1:${port}`));
    const r = await runCli(['start', '--config', c.file]);
    const said = `${setting} 127.0.0.1:${port}: address already in use (EADDRINUSE)`;
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`postern: could not start: ${said}`);
    const logs = logLines(r.stdout);
    expect(logs.find((l) => l.event === 'config.error')?.err).toContain(said);
    // Refused before anything was opened: no listener, no spool, no dataDir.
    expect(logs.map((l) => l.event)).toEqual(['config.error']);
    expect(existsSync(c.dataDir)).toBe(false);
  });

  it('an address this machine does not have: EADDRNOTAVAIL named, at start (exit 1) and by check-config (exit 2)', async () => {
    // TEST-NET-1 (RFC 5737): on no interface; nothing is ever listening there.
    const c = configIn(dir, { smtp: { listen: ['192.0.2.1:2525'] } });
    const said = 'smtp.listen 192.0.2.1:2525: address not available (EADDRNOTAVAIL)';
    const started = await runCli(['start', '--config', c.file]);
    expect(started.stderr).toContain(said);
    expect(started.code).toBe(1);
    const checked = await runCli(['check-config', '--config', c.file]);
    expect(checked.stderr).toContain(said);
    expect(checked.code).toBe(2);
  });

  it('check-config passes a port in use: the running gateway holds it while its next config is checked', async () => {
    const c = configIn(dir, { portal: { listen: `127.0.0.1:${await takenPort()}` } });
    const r = await runCli(['check-config', '--config', c.file]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });
});

/**
 * The SMTP listener binds last. A portal or admin port that is taken in the moment
 * between the start's check and its bind (injected: a module preloaded with --import
 * makes the HTTP(S) listen on that port fail with EADDRINUSE, as the kernel would; the
 * check's plain listener is let through) used to fail the start after SMTP had been
 * listening, and answering 220, for a while; the portal's failure also left the spool
 * locked by a process that was gone.
 */
describe('postern start: SMTP listens only once the portal and the admin listener have their ports', () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-start-order-'));
  const fault = join(dir, 'taken-http-port.mjs');
  writeFileSync(
    fault,
    [
      "import http from 'node:http';",
      "import https from 'node:https';",
      "import net from 'node:net';",
      'const taken = Number(process.env.POSTERN_TEST_TAKEN_PORT);',
      'const listen = net.Server.prototype.listen;',
      'net.Server.prototype.listen = function (...args) {',
      "  const port = typeof args[0] === 'object' && args[0] !== null ? args[0].port : args[0];",
      '  if ((this instanceof http.Server || this instanceof https.Server) && Number(port) === taken) {',
      "    const err = Object.assign(new Error(`listen EADDRINUSE: address already in use 127.0.0.1:${taken}`), { code: 'EADDRINUSE', syscall: 'listen', port: taken });",
      "    process.nextTick(() => this.emit('error', err));",
      '    return this;',
      '  }',
      '  return listen.apply(this, args);',
      '};',
      '',
    ].join('\n'),
  );
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each(['portal.listen', 'admin.listen'])('%s taken after the check: the start fails naming it, SMTP never listened, the spool is not left locked', async (setting) => {
    const port = await closedPort();
    const c = configIn(dir, { smtp: { listen: [`127.0.0.1:${await closedPort()}`] }, ...listenAt(setting, `127.0.0.1:${port}`) });
    const r = await runCli(['start', '--config', c.file], { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${fault}`, POSTERN_TEST_TAKEN_PORT: String(port) });
    const said = `${setting} 127.0.0.1:${port}: address already in use (EADDRINUSE)`;
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(said);
    const logs = logLines(r.stdout);
    expect(logs.find((l) => l.event === 'config.error')?.err).toContain(said);
    // The gateway had started (the spool was opened) ...
    expect(logs.some((l) => l.event === 'gateway.start')).toBe(true);
    // ... but no SMTP client could have been greeted: the listener was never bound.
    expect(logs.filter((l) => l.event === 'smtp.listen' || l.event === 'gateway.ready')).toEqual([]);
    expect(existsSync(join(spoolShardDir(c.dataDir, 0), 'postern.lock')), 'spool lock released').toBe(false);
  });
});
