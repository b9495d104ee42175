import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDns } from '../helpers/dns-server.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { TestMx } from '../helpers/mx-server.js';
import { createTestCa } from '../helpers/pki.js';
import { findProgram } from '../helpers/programs.js';
import { testMessage } from '../helpers/smtp-client.js';

const run = promisify(execFile);
const swaks = findProgram('swaks');

// Skipped only on a developer machine without swaks; under CI=true findProgram throws.
describe.skipIf(!swaks)('swaks → Postern → receiving MX over verified TLS', () => {
  const ca = createTestCa();
  let dns: TestDns;
  let mx: TestMx;
  let gw: TestGateway;

  beforeAll(async () => {
    mx = await new TestMx({ tls: ca.issue(['mx.dest.test']) }).start();
    dns = await new TestDns({
      'dest.test': { MX: [{ exchange: 'mx.dest.test', priority: 10 }] },
      'mx.dest.test': { A: ['127.0.0.1'] },
    }).start();
    const gwCert = ca.issue(['postern.test']);
    const dir = mkdtempSync(join(tmpdir(), 'postern-swaks-'));
    writeFileSync(join(dir, 'cert.pem'), gwCert.cert);
    writeFileSync(join(dir, 'key.pem'), gwCert.key);
    gw = await startTestGateway({
      smtp: { tls: { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') } },
      delivery: { mxPort: mx.port, dns: { servers: [dns.server] }, tls: { default: 'verify', trust: [ca.caFile] } },
    });
  });

  afterAll(async () => {
    await gw?.stop();
    await mx?.stop();
    await dns?.stop();
  });

  it('delivers once, byte-identical apart from the added trace headers', async () => {
    const original = testMessage({ to: 'patient@dest.test', subject: 'swaks interop', body: 'Line one.\r\n.leading dot line\r\nLast line.' });
    const dataFile = join(mkdtempSync(join(tmpdir(), 'swaks-data-')), 'msg.eml');
    // swaks ends DATA with CRLF.CRLF itself, so the file goes without the final CRLF.
    writeFileSync(dataFile, original.subarray(0, original.length - 2));
    const { stdout } = await run(swaks as string, [
      '--server', `127.0.0.1:${gw.port}`,
      '--from', 'sender@client.test',
      '--to', 'patient@dest.test',
      '--helo', 'client.test',
      '--tls', '--tls-verify', '--tls-ca-path', ca.caFile,
      '--data', `@${dataFile}`,
    ]);
    // swaks printed the server's side of the TLS session and the durable acknowledgement.
    expect(stdout).toMatch(/<~\s+220 .*TLS|STARTTLS/);
    const accepted = /<~\s+250 2\.0\.0 Ok: queued as (\w+)/.exec(stdout);
    expect(accepted, stdout).not.toBeNull();

    await mx.waitFor(1);
    await new Promise((r) => setTimeout(r, 300));
    expect(mx.messages).toHaveLength(1);
    const got = mx.messages[0]!;
    expect(got.rcptTo).toEqual(['patient@dest.test']);
    expect(got.mailFrom).toBe('sender@client.test');
    expect(got.secure).toBe(true);
    expect(got.servername).toBe('mx.dest.test');

    // Everything after Postern's own two header fields is the original, byte for byte.
    const raw = got.raw;
    const tail = raw.subarray(raw.length - original.length);
    expect(tail.equals(original)).toBe(true);
    const added = raw.subarray(0, raw.length - original.length).toString('utf8');
    expect(added).toMatch(/^Received: from client\.test \(unknown \[127\.0\.0\.1\]\)\r\n\tby postern\.test \(Postern\) with ESMTPS id \w+\r\n\t\(using TLSv1\.[23] with cipher [\w-]+\)\r\n\tfor <patient@dest\.test>;\r\n\t\w{3}, \d+ \w{3} \d{4} [\d:]{8} \+0000\r\nX-Postern-Loop: postern\.test\r\n$/);

    const sent = await gw.waitForLog((l) => l.event === 'delivery.sent');
    expect(sent).toMatchObject({ queueId: accepted![1], to: 'patient@dest.test', dsn: '2.0.0', route: 'mx', tls: { level: 'verify', verified: true } });
    expect(String(sent.relay)).toBe(`mx.dest.test[127.0.0.1]:${mx.port}`);
  });
});
