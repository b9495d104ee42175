import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const ENTRY = join(process.cwd(), 'dist', 'cli', 'postern.cjs');

async function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [ENTRY, ...args], { env: { ...process.env, ...env } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

function configFile(text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'postern-cli-')), 'postern.yaml');
  writeFileSync(file, text);
  return file;
}

describe('postern CLI', () => {
  it('check-config accepts the shipped default config', async () => {
    const r = await cli(['check-config', '--config', 'config/postern.yaml']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/OK/);
    expect(r.stdout).toMatch(/smtp\.listen: 127\.0\.0\.1:2525/);
  });

  it('check-config names each bad key and exits non-zero', async () => {
    const file = configFile('smtp:\n  listen: ["nonsense"]\n  clients: [{ cidr: 300.1.1.1/8 }]\ndelivery:\n  retry: { initialDelay: soon }\n  tsl: {}\n');
    const r = await cli(['check-config', '--config', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/smtp\.listen\.0: "nonsense" is not host:port/);
    expect(r.stderr).toMatch(/smtp\.clients\.0\.cidr: not an IP address or CIDR block/);
    expect(r.stderr).toMatch(/delivery\.retry\.initialDelay: "soon" is not a duration/);
    expect(r.stderr).toMatch(/delivery: unknown key tsl/);
  });

  it('reads POSTERN_CONFIG when --config is not given, and reports a missing env secret by key', async () => {
    const file = configFile('smtp:\n  tls:\n    cert: ${env:POSTERN_TEST_CERT_PATH}\n    key: /nonexistent\n');
    const r = await cli(['check-config'], { POSTERN_CONFIG: file });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(file);
    expect(r.stderr).toMatch(/smtp\.tls\.cert: environment variable POSTERN_TEST_CERT_PATH is not set/);
  });

  it('names a certificate or trust file it cannot read', async () => {
    const file = configFile('smtp:\n  tls: { cert: /nonexistent/cert.pem, key: /nonexistent/key.pem }\ndelivery:\n  tls: { trust: [/nonexistent/ca.pem] }\n');
    const r = await cli(['check-config', '--config', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/smtp\.tls\.cert: not a PEM block and not a readable file: cannot read \/nonexistent\/cert\.pem \(ENOENT\)/);
    expect(r.stderr).toMatch(/delivery\.tls\.trust\.0: not a PEM block and not a readable file: cannot read/);
  });

  it('start exits 1 with a clear line, naming the key and the address, when the SMTP port is taken', async () => {
    const { createServer } = await import('node:net');
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as { port: number }).port;
    const file = configFile(`dataDir: ${mkdtempSync(join(tmpdir(), 'postern-cli-data-'))}\nsmtp:\n  listen: ["127.0.0.1:${port}"]\n`);
    const r = await cli(['start', '--config', file]);
    blocker.close();
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`smtp.listen 127.0.0.1:${port}: address already in use (EADDRINUSE)`);
  });

  it('start refuses a bad config with exit code 2 before listening', async () => {
    const file = configFile('hostname: "not a hostname!"\n');
    const r = await cli(['start', '--config', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/hostname: must be the gateway's DNS name/);
  });

  it('hash-password prints a scrypt hash that the config accepts', async () => {
    const child = execFile(process.execPath, [ENTRY, 'hash-password']);
    child.stdin?.end('a long enough password\n');
    let out = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    await new Promise((resolve) => child.once('exit', resolve));
    expect(out.trim()).toMatch(/^scrypt\$131072\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    const file = configFile(`smtp:\n  auth:\n    users: [{ username: app, passwordHash: "${out.trim()}" }]\n`);
    expect((await cli(['check-config', '--config', file])).code).toBe(0);
  });
});

describe('postern start on its embedded default', () => {
  it('makes a development certificate on first start and offers STARTTLS with it', async () => {
    const { startChildGateway } = await import('../helpers/child-gateway.js');
    const { RawSmtp } = await import('../helpers/smtp-client.js');
    const { X509Certificate } = await import('node:crypto');
    const { existsSync } = await import('node:fs');
    const dir = mkdtempSync(join(tmpdir(), 'postern-devcert-'));
    // The shipped config, with only the data directory and port changed.
    const gw = await startChildGateway(dir, { ...(await import('yaml')).parse((await import('node:fs')).readFileSync('config/postern.yaml', 'utf8')), dataDir: join(dir, 'data'), smtp: { listen: ['127.0.0.1:0'], clients: [{ cidr: '127.0.0.0/8' }] }, workers: 1 });
    try {
      expect(existsSync(join(dir, 'data', 'tls', 'dev-cert.pem'))).toBe(true);
      expect(gw.logs.some((l) => l.event === 'tls.dev-certificate' && l.created === true)).toBe(true);
      const c = await RawSmtp.connect(gw.port);
      await c.command('EHLO client.test');
      expect(await c.command('STARTTLS')).toMatch(/^220/);
      await c.startTls();
      const peer = (c as unknown as { socket: import('node:tls').TLSSocket }).socket.getPeerX509Certificate() as InstanceType<typeof X509Certificate>;
      expect(peer.subject).toContain('CN=postern.localhost');
      expect(peer.subjectAltName).toContain('DNS:postern.localhost');
      c.close();
    } finally {
      gw.killAll();
    }
  });
});
