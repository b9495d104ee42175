import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname as osHostname, tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, configPathFrom, DEFAULT_CONFIG_PATH, loadConfigFile, parseConfigText, validateConfig } from '../../src/config/load.js';
import { interpolateSecrets } from '../../src/config/interpolate.js';
import { parseHostPort } from '../../src/config/schema.js';

const tmp = mkdtempSync(join(tmpdir(), 'postern-load-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const HOST = 'hostname: gw.example.org\n';

/** Parses text that must fail; returns the problem lines (and checks the error's shape). */
function problemsOf(text: string, env: NodeJS.ProcessEnv = {}): string[] {
  let caught: unknown;
  try {
    parseConfigText(text, 'test.yaml', env);
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(ConfigError);
  const err = caught as ConfigError;
  expect(err.file).toBe('test.yaml');
  expect(err.problems.length).toBeGreaterThan(0);
  expect(err.message.startsWith('invalid configuration in test.yaml:\n')).toBe(true);
  for (const p of err.problems) expect(err.message).toContain(`  - ${p}`);
  return err.problems;
}

function onlyProblem(text: string, env: NodeJS.ProcessEnv = {}): string {
  const problems = problemsOf(text, env);
  expect(problems).toHaveLength(1);
  return problems[0] as string;
}

describe('defaults of a minimal config', () => {
  const config = parseConfigText(HOST, 'min.yaml', {});

  it('fills every section with its documented default', () => {
    expect(config).toEqual({
      dataDir: 'var',
      workers: 'auto',
      hostname: 'gw.example.org',
      log: { level: 'info' },
      smtp: {
        listen: [{ host: '0.0.0.0', port: 25 }],
        banner: 'Postern',
        tls: { minVersion: 'TLSv1.2' },
        clients: [],
        auth: { users: [], maxFailures: 5, failureWindow: 900_000, lockout: 900_000, failureDelay: 1000 },
        limits: {
          maxMessageSize: 50 * 1024 * 1024,
          maxRecipients: 1000,
          maxHeaderSize: 256 * 1024,
          maxConnections: 1000,
          maxConnectionsPerIp: 100,
          commandTimeout: 300_000,
          dataTimeout: 600_000,
        },
        bareLineEndings: 'reject',
        loopGuard: { maxReceived: 50, maxOwnStamps: 1 },
      },
      queue: { backend: 'fs', commitWindow: 3, segmentMaxAge: 600_000 },
      redis: { url: 'redis://127.0.0.1:6379', keyPrefix: 'postern:', durability: 'warn', waitReplicas: 0, waitTimeout: 1000, leaseTime: 60_000, commandTimeout: 5000 },
      delivery: {
        routes: {},
        mxPort: 25,
        dns: { timeout: 5000, cacheTtl: 60_000 },
        tls: { trust: [], default: 'verify', domains: {} },
        retry: { initialDelay: 300_000, maxDelay: 3_600_000, lifetime: 5 * 86_400_000 },
        pool: { maxConnectionsPerHost: 10, maxMessagesPerConnection: 100, idleTimeout: 30_000 },
        mtaSts: { enabled: true, port: 443, timeout: 10_000 },
        concurrency: 200,
        maxRecipientsPerTransaction: 100,
        wholeMessageMemory: 64 * 1024 * 1024,
        timeouts: { connect: 30_000, greeting: 60_000, socket: 300_000, dataDone: 600_000 },
      },
      shutdown: { timeout: 30_000 },
      portal: {
        enabled: true,
        listen: { host: '127.0.0.1', port: 8443 },
        tls: {},
        masterKeys: [],
        expiry: 30 * 86_400_000,
        organisation: { name: 'Postern Secure Mail', noticeText: 'You have received a secure message. Open it with the link below.' },
        showSubject: false,
        readReceipts: false,
        replyAll: false,
        sessions: { idle: 15 * 60_000, absolute: 12 * 3_600_000 },
        trustProxy: ['loopback'],
        rateLimit: { window: 10 * 60_000, sessions: 60, logins: 30, resets: 10, resetsPerAccount: 3, replyWindow: 3_600_000, replies: 30, replyBytes: 100 * 1024 * 1024 },
        sms: { domain: 'secure.text', defaultCountry: '1' },
      },
      keys: {
        discovery: ['store', 'wkd'],
        wkd: { port: 443, timeout: 5000 },
        keyserver: { protocol: 'vks', timeout: 5000 },
        cacheTtl: 86_400_000,
        negativeTtl: 3_600_000,
        errorTtl: 300_000,
        smimeTrust: [],
        smimeIntermediates: [],
        smimeCrls: [],
        harvest: false,
      },
      identities: {},
      protect: {
        pgp: { sign: true, protectSubject: false, maxSize: 25 * 1024 * 1024 },
        smime: { sign: true, maxSize: 10 * 1024 * 1024 },
      },
      dkim: { keys: [] },
      policy: {},
      archive: {
        enabled: true,
        sinks: [{ type: 'fs' }],
        masterKeys: [],
        failOpen: false,
        retention: { defaultDays: 2192, rules: [] },
        purgeInterval: 86_400_000,
        searchLimits: { maxItems: 10_000, maxBytes: 1024 * 1024 * 1024 },
      },
      admin: { enabled: true, listen: { host: '127.0.0.1', port: 9025 }, tls: { enabled: false }, apiKeys: [], users: [], metricsAuth: false, authLimit: { failures: 10, window: 300_000 }, cleartext: 'warn' },
      health: { diskFullPercent: 95, diskMinFree: 1024 * 1024 * 1024, probeInterval: 5000 },
      audit: { enabled: true, flushInterval: 50, failClosed: false },
      webhooks: [],
    });
  });

  it('an empty file is a valid config too, with the machine host name', () => {
    const valid = /^[A-Za-z0-9.-]+$/.test(osHostname());
    if (valid) expect(parseConfigText('', 'empty.yaml', {}).hostname).toBe(osHostname());
    expect(validateConfig({ hostname: 'a.example' }).smtp.listen).toEqual([{ host: '0.0.0.0', port: 25 }]);
  });

  it('a partly given section keeps the defaults of its other keys', () => {
    const c = parseConfigText(`${HOST}delivery:\n  retry:\n    maxDelay: 2h\nsmtp:\n  limits:\n    maxRecipients: 5\n`, 'x.yaml', {});
    expect(c.delivery.retry).toEqual({ initialDelay: 300_000, maxDelay: 7_200_000, lifetime: 5 * 86_400_000 });
    expect(c.smtp.limits.maxRecipients).toBe(5);
    expect(c.smtp.limits.maxMessageSize).toBe(50 * 1024 * 1024);
  });

  it('converts durations and sizes given as text or as numbers', () => {
    const c = parseConfigText(
      `${HOST}smtp:\n  limits:\n    maxMessageSize: 25MB\n    maxHeaderSize: 4096\n    commandTimeout: 90s\n    dataTimeout: 120000\nshutdown:\n  timeout: 1m30s\n`,
      'x.yaml',
      {},
    );
    expect(c.smtp.limits.maxMessageSize).toBe(25 * 1024 * 1024);
    expect(c.smtp.limits.maxHeaderSize).toBe(4096);
    expect(c.smtp.limits.commandTimeout).toBe(90_000);
    expect(c.smtp.limits.dataTimeout).toBe(120_000);
    expect(c.shutdown.timeout).toBe(90_000);
  });

  it('a client cidr given as one string becomes a list; requireTls defaults to false', () => {
    const c = parseConfigText(`${HOST}smtp:\n  clients:\n    - cidr: 10.0.0.0/8\n    - cidr: [192.0.2.1, "2001:db8::/32"]\n      requireTls: true\n`, 'x.yaml', {});
    expect(c.smtp.clients).toEqual([
      { cidr: ['10.0.0.0/8'], requireTls: false },
      { cidr: ['192.0.2.1', '2001:db8::/32'], requireTls: true },
    ]);
  });

  it('sender domains are trimmed and lower-cased; wildcards are accepted', () => {
    const c = parseConfigText(`${HOST}smtp:\n  clients:\n    - cidr: 10.0.0.0/8\n      senderDomains: [" Example.ORG ", "*.Corp.Example", "*"]\n`, 'x.yaml', {});
    expect(c.smtp.clients[0]?.senderDomains).toEqual(['example.org', '*.corp.example', '*']);
  });

  it('internationalised domains of sender lists and domain maps are kept as A-labels, whichever form was written', () => {
    const c = parseConfigText(
      `${HOST}smtp:\n  clients:\n    - cidr: 10.0.0.0/8\n      senderDomains: ["Bücher.Example", "*.Söndr.example"]\ndelivery:\n  routes:\n    "Bücher.Example": "127.0.0.1:2525"\n    "xn--sndr-5qa.example": "127.0.0.1:2526"\n  tls:\n    domains:\n      "*.bücher.example": encrypt\n`,
      'x.yaml',
      {},
    );
    expect(c.smtp.clients[0]!.senderDomains).toEqual(['xn--bcher-kva.example', '*.xn--sndr-5qa.example']);
    expect(Object.keys(c.delivery.routes).sort()).toEqual(['xn--bcher-kva.example', 'xn--sndr-5qa.example']);
    expect(Object.keys(c.delivery.tls.domains)).toEqual(['*.xn--bcher-kva.example']);
  });

  it('two keys of a domain map naming one domain in its two forms are an error naming both', () => {
    expect(() => parseConfigText(`${HOST}delivery:\n  routes:\n    "bücher.example": "127.0.0.1:2525"\n    "XN--BCHER-KVA.example": "127.0.0.1:2526"\n`, 'x.yaml', {})).toThrow(
      /delivery\.routes\.XN--BCHER-KVA\.example.*names the same domain as "bücher\.example" \(xn--bcher-kva\.example\)/s,
    );
  });

  it('portal.replyFrom: unset by default (replies then come from secure-reply@<hostname>); a set one must be a plain address', () => {
    expect(config.portal.replyFrom).toBeUndefined();
    expect(parseConfigText(`${HOST}portal:\n  replyFrom: replies@gw.example.org\n`, 'x.yaml', {}).portal.replyFrom).toBe('replies@gw.example.org');
    expect(onlyProblem(`${HOST}portal:\n  replyFrom: "Secure <replies@gw.example.org>"\n`)).toBe('portal.replyFrom: must be a plain address, e.g. secure-reply@example.org');
  });
});

describe('error messages name the key path and say what is wrong', () => {
  it('unknown key, with the path of the mapping that holds it', () => {
    const p = onlyProblem(`${HOST}smtp:\n  lisen: ["1.2.3.4:25"]\n`);
    expect(p).toMatch(/^smtp: unknown key lisen\b/);
    expect(p).toContain('README.md');
  });

  it('unknown key deep in the tree', () => {
    expect(onlyProblem(`${HOST}delivery:\n  retry:\n    intialDelay: 5m\n`)).toMatch(/^delivery\.retry: unknown key intialDelay\b/);
    expect(onlyProblem(`${HOST}smtp:\n  clients:\n    - cidr: 10.0.0.0/8\n      sendrDomains: [a.example]\n`)).toMatch(
      /^smtp\.clients\.0: unknown key sendrDomains\b/,
    );
  });

  it('several unknown keys in one mapping are listed together', () => {
    expect(onlyProblem(`${HOST}log:\n  levl: info\n  format: json\n`)).toMatch(/^log: unknown keys levl, format\b/);
  });

  it('unknown top-level key', () => {
    expect(onlyProblem(`${HOST}smtpd:\n  listen: []\n`)).toMatch(/^\(top level\): unknown key smtpd\b/);
  });

  it('bad duration "5 minutes"', () => {
    const p = onlyProblem(`${HOST}delivery:\n  retry:\n    initialDelay: 5 minutes\n`);
    expect(p).toBe('delivery.retry.initialDelay: "5 minutes" is not a duration (use e.g. 30s, 5m, 1h, 5d)');
  });

  it('a Redis command timeout that WAIT for replicas would always run into', () => {
    expect(onlyProblem(`${HOST}redis:\n  waitReplicas: 1\n  waitTimeout: 5s\n  commandTimeout: 5s\n`)).toBe(
      'redis.commandTimeout: must be longer than redis.waitTimeout when redis.waitReplicas is set (WAIT is a Redis command too)',
    );
  });

  it('bad size', () => {
    expect(onlyProblem(`${HOST}smtp:\n  limits:\n    maxMessageSize: 25 megs\n`)).toBe(
      'smtp.limits.maxMessageSize: "25 megs" is not a size (use e.g. 512KB, 25MB)',
    );
  });

  it('a size of zero is refused', () => {
    expect(onlyProblem(`${HOST}smtp:\n  limits:\n    maxHeaderSize: 0KB\n`)).toMatch(/^smtp\.limits\.maxHeaderSize: "0KB" is not a size/);
  });

  it('bad cidr in smtp.clients[0].cidr', () => {
    expect(onlyProblem(`${HOST}smtp:\n  clients:\n    - cidr: 10.0.0.0/33\n`)).toBe(
      'smtp.clients.0.cidr: not an IP address or CIDR block (e.g. 10.0.0.0/8, 2001:db8::/32, 127.0.0.1)',
    );
  });

  it('bad cidr inside a list names the list index', () => {
    expect(onlyProblem(`${HOST}smtp:\n  clients:\n    - cidr: 10.0.0.0/8\n    - cidr: [192.0.2.0/24, bogus]\n`)).toMatch(
      /^smtp\.clients\.1\.cidr\.1: not an IP address or CIDR block/,
    );
  });

  it('bad host:port in smtp.listen', () => {
    expect(onlyProblem(`${HOST}smtp:\n  listen: ["127.0.0.1:2525", "localhost"]\n`)).toBe(
      'smtp.listen.1: "localhost" is not host:port (e.g. 127.0.0.1:2525 or [::1]:25)',
    );
    expect(onlyProblem(`${HOST}smtp:\n  listen: ["127.0.0.1:70000"]\n`)).toMatch(/^smtp\.listen\.0: "127\.0\.0\.1:70000" is not host:port/);
    expect(onlyProblem(`${HOST}smtp:\n  listen: ["::1:25"]\n`)).toMatch(/^smtp\.listen\.0: "::1:25" is not host:port/);
  });

  it('an empty listen list is refused', () => {
    expect(onlyProblem(`${HOST}smtp:\n  listen: []\n`)).toMatch(/^smtp\.listen: /);
  });

  it('listen accepts port 0 (a free port) and bracketed IPv6', () => {
    const c = parseConfigText(`${HOST}smtp:\n  listen: ["127.0.0.1:0", "[::1]:2525", " 0.0.0.0:25 "]\n`, 'x.yaml', {});
    expect(c.smtp.listen).toEqual([
      { host: '127.0.0.1', port: 0 },
      { host: '::1', port: 2525 },
      { host: '0.0.0.0', port: 25 },
    ]);
  });

  it('tls cert without key (and key without cert)', () => {
    expect(onlyProblem(`${HOST}smtp:\n  tls:\n    cert: /etc/postern/cert.pem\n`)).toBe(
      'smtp.tls: set both cert and key, or neither (a dev certificate is then made)',
    );
    expect(onlyProblem(`${HOST}smtp:\n  tls:\n    key: /etc/postern/key.pem\n`)).toMatch(/^smtp\.tls: set both cert and key/);
  });

  it('tls cert and key files that cannot be read are each named', () => {
    const problems = problemsOf(`${HOST}smtp:\n  tls:\n    cert: ${tmp}/missing-cert.pem\n    key: ${tmp}/missing-key.pem\n`);
    expect(problems).toEqual([
      `smtp.tls.cert: not a PEM block and not a readable file: cannot read ${tmp}/missing-cert.pem (ENOENT); fix the path or the file's permissions`,
      `smtp.tls.key: not a PEM block and not a readable file: cannot read ${tmp}/missing-key.pem (ENOENT); fix the path or the file's permissions`,
    ]);
  });

  it('readable cert/key files and inline PEM are accepted', () => {
    const cert = join(tmp, 'cert.pem');
    const key = join(tmp, 'key.pem');
    writeFileSync(cert, 'not really a cert');
    writeFileSync(key, 'not really a key');
    const c = parseConfigText(`${HOST}smtp:\n  tls:\n    cert: ${cert}\n    key: ${key}\n`, 'x.yaml', {});
    expect(c.smtp.tls).toEqual({ cert, key, minVersion: 'TLSv1.2' });
    const inline = validateConfig({ hostname: 'gw.example.org', smtp: { tls: { cert: '-----BEGIN CERTIFICATE-----\nx', key: '-----BEGIN PRIVATE KEY-----\ny' } } });
    expect(inline.smtp.tls.cert).toMatch(/^-----BEGIN CERTIFICATE-----/);
  });

  it('unreadable trust anchors name their list index', () => {
    const p = onlyProblem(`${HOST}delivery:\n  tls:\n    trust: ["-----BEGIN CERTIFICATE-----", ${tmp}/no-ca.pem]\n`);
    expect(p).toBe(`delivery.tls.trust.1: not a PEM block and not a readable file: cannot read ${tmp}/no-ca.pem (ENOENT); fix the path or the file's permissions`);
  });

  it('bad enum for delivery.tls.default lists the allowed values', () => {
    const p = onlyProblem(`${HOST}delivery:\n  tls:\n    default: strict\n`);
    expect(p.startsWith('delivery.tls.default: ')).toBe(true);
    for (const level of ['none', 'may', 'encrypt', 'verify']) expect(p).toContain(`"${level}"`);
  });

  it('bad enum in a per-domain TLS level names the domain', () => {
    expect(onlyProblem(`${HOST}delivery:\n  tls:\n    domains:\n      example.org: mandatory\n`)).toMatch(/^delivery\.tls\.domains\.example\.org: .*"verify"/);
  });

  it('wrong type names the key', () => {
    expect(onlyProblem(`${HOST}smtp:\n  limits:\n    maxRecipients: lots\n`)).toMatch(/^smtp\.limits\.maxRecipients: .*number/i);
    expect(onlyProblem(`${HOST}delivery:\n  concurrency: 0\n`)).toMatch(/^delivery\.concurrency: /);
    expect(onlyProblem(`${HOST}smtp:\n  bareLineEndings: strip\n`)).toMatch(/^smtp\.bareLineEndings: .*"normalize"/);
  });

  it('a host name that is an IP address or has bad characters is refused', () => {
    expect(onlyProblem('hostname: 192.0.2.1\n')).toBe("hostname: must be the gateway's DNS name (e.g. postern.example.org)");
    expect(onlyProblem('hostname: "bad_host name"\n')).toMatch(/^hostname: must be the gateway's DNS name/);
  });

  it('an AUTH user whose hash is not a scrypt hash', () => {
    expect(onlyProblem(`${HOST}smtp:\n  auth:\n    users:\n      - username: relay\n        passwordHash: hunter2\n`)).toBe(
      'smtp.auth.users.0.passwordHash: must be a scrypt hash made by `postern hash-password` (scrypt$N$r$p$salt$hash)',
    );
  });

  it('a bad sender domain names its index', () => {
    expect(onlyProblem(`${HOST}smtp:\n  clients:\n    - cidr: 10.0.0.0/8\n      senderDomains: [ok.example, "not a domain"]\n`)).toMatch(
      /^smtp\.clients\.0\.senderDomains\.1: not a domain name/,
    );
  });

  it('all problems are reported at once', () => {
    const problems = problemsOf(`${HOST}smtp:\n  listen: ["nope"]\n  limits:\n    maxMessageSize: huge\ndelivery:\n  retry:\n    lifetime: forever\n`);
    expect(problems).toHaveLength(3);
    expect(problems.some((p) => p.startsWith('smtp.listen.0: '))).toBe(true);
    expect(problems.some((p) => p.startsWith('smtp.limits.maxMessageSize: '))).toBe(true);
    expect(problems.some((p) => p.startsWith('delivery.retry.lifetime: '))).toBe(true);
  });

  it('YAML syntax error with a line number', () => {
    const p = onlyProblem('hostname: gw.example.org\nsmtp:\n  listen: [\n  banner: x\n');
    expect(p).toMatch(/^YAML syntax error at line \d+: /);
    expect(Number(/at line (\d+)/.exec(p)?.[1])).toBeGreaterThanOrEqual(3);
    expect(p).not.toContain('\n');
    expect(onlyProblem('a: 1\nb:\n  - c\n d: 2\n')).toMatch(/^YAML syntax error at line 4: /);
  });

  it('a top level that is not a mapping', () => {
    expect(onlyProblem('- a\n- b\n')).toMatch(/^the top level must be a mapping/);
    expect(onlyProblem('just text\n')).toMatch(/^the top level must be a mapping/);
  });
});

describe('secret interpolation', () => {
  // Well-formed: power-of-two N, a salt, and a 32-byte key.
  const hash = `scrypt$1024$8$1$c2FsdA==$${Buffer.alloc(32, 7).toString('base64')}`;

  it('${env:NAME} takes the environment variable', () => {
    const c = parseConfigText(`${HOST}smtp:\n  auth:\n    users:\n      - username: relay\n        passwordHash: \${env:RELAY_HASH}\n`, 'x.yaml', {
      RELAY_HASH: hash,
    });
    expect(c.smtp.auth.users).toEqual([{ username: 'relay', passwordHash: hash }]);
  });

  it('replaces references inside a longer string, several per string', () => {
    const c = parseConfigText(`${HOST}smtp:\n  banner: "\${env:A} and \${env:B}!"\n`, 'x.yaml', { A: 'one', B: 'two' });
    expect(c.smtp.banner).toBe('one and two!');
  });

  it('an empty environment variable is set (not missing)', () => {
    expect(parseConfigText(`${HOST}smtp:\n  banner: "x\${env:EMPTY}y"\n`, 'x.yaml', { EMPTY: '' }).smtp.banner).toBe('xy');
  });

  it('values of environment variables are not interpolated again', () => {
    expect(parseConfigText(`${HOST}smtp:\n  banner: \${env:A}\n`, 'x.yaml', { A: '${env:B}', B: 'leak' }).smtp.banner).toBe('${env:B}');
  });

  it('a missing env var is reported with the key path', () => {
    expect(onlyProblem(`${HOST}smtp:\n  auth:\n    users:\n      - username: relay\n        passwordHash: \${env:NOPE_RELAY_HASH}\n`)).toBe(
      'smtp.auth.users.0.passwordHash: environment variable NOPE_RELAY_HASH is not set (set it, or put the value in the config)',
    );
  });

  it('${file:PATH} reads the file, trimmed', () => {
    const secret = join(tmp, 'hash.txt');
    writeFileSync(secret, `\n  ${hash}\n\n`);
    const c = parseConfigText(`${HOST}smtp:\n  auth:\n    users:\n      - username: relay\n        passwordHash: \${file:${secret}}\n`, 'x.yaml', {});
    expect(c.smtp.auth.users[0]?.passwordHash).toBe(hash);
  });

  it('a relative ${file:...} path starts at the working directory', () => {
    const secret = join(tmp, 'banner.txt');
    writeFileSync(secret, 'Secret Banner\n');
    const rel = relative(process.cwd(), secret);
    expect(rel.startsWith('/')).toBe(false);
    expect(parseConfigText(`${HOST}smtp:\n  banner: \${file:${rel}}\n`, 'x.yaml', {}).smtp.banner).toBe('Secret Banner');
  });

  it('an unreadable file is reported with the key path and the file', () => {
    const p = onlyProblem(`${HOST}delivery:\n  tls:\n    trust: ["\${file:${tmp}/absent-secret}"]\n`);
    expect(p.startsWith(`delivery.tls.trust.0: cannot read secret file ${tmp}/absent-secret: `)).toBe(true);
    expect(p).toContain('ENOENT');
    // A directory cannot be read as a file either.
    expect(onlyProblem(`${HOST}smtp:\n  banner: \${file:${tmp}}\n`)).toMatch(new RegExp(`^smtp\\.banner: cannot read secret file ${tmp}: .*EISDIR`));
  });

  it('all missing secrets are reported together, before validation', () => {
    const problems = problemsOf(`${HOST}smtp:\n  banner: \${env:MISSING_ONE}\n  bogusKey: \${file:${tmp}/absent}\n`);
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(/^smtp\.banner: environment variable MISSING_ONE is not set/);
    expect(problems[1]).toMatch(/^smtp\.bogusKey: cannot read secret file /);
  });

  it('numbers, booleans, a $ not followed by { and $${ (a literal ${) are left alone', () => {
    const problems: string[] = [];
    const out = interpolateSecrets({ b: 5, c: true, d: null, e: ['${env:X}', { f: '$env:X', g: 'pa$$w0rd$', h: 'scrypt$1$8$1$c2FsdA==$a2V5', i: '$${env:X} and $${ alone' }] }, '/', { X: 'x' }, problems);
    expect(out).toEqual({ b: 5, c: true, d: null, e: ['x', { f: '$env:X', g: 'pa$$w0rd$', h: 'scrypt$1$8$1$c2FsdA==$a2V5', i: '${env:X} and ${ alone' }] });
    expect(problems).toEqual([]);
  });

  it('a ${ that is no ${env:NAME} or ${file:PATH} reference is a problem naming the key, never kept as the secret', () => {
    const forms = 'the supported forms are ${env:NAME} and ${file:PATH} (write $${ for a literal ${)';
    const problems = problemsOf(
      `${HOST}webhooks:\n  - url: https://hooks.example.org/p\n    secret: "\${ENV:POSTERN_WEBHOOK_SECRET}"\n  - url: https://hooks.example.org/q\n    secret: "\${env:POSTERN_WEBHOOK_SECRET"\n` +
        `portal:\n  sms:\n    provider: { url: "https://sms.example.org/api", accountSid: AC1, authToken: "\${secret:SMS}", from: "+15550000" }\n` +
        `smtp:\n  banner: "a \${ b"\n  auth:\n    users: [{ username: relay, passwordHash: "\${file:}" }]\n`,
      { POSTERN_WEBHOOK_SECRET: 'from-the-environment-0123456789' },
    );
    expect(problems).toEqual([
      `webhooks.0.secret: \${ENV:...} must be written in lower case (\${env:...}); ${forms}`,
      `webhooks.1.secret: \${env:... has no closing "}" on its line; ${forms}`,
      `portal.sms.provider.authToken: \${secret:...} is not a kind of reference Postern knows; ${forms}`,
      `smtp.banner: "\${" does not start a reference; ${forms}`,
      `smtp.auth.users.0.passwordHash: \${file:} names no file; ${forms}`,
    ]);
  });

  it('interpolateSecrets resolves relative files against the base directory it is given', () => {
    writeFileSync(join(tmp, 'rel-secret'), ' s3cret ');
    const problems: string[] = [];
    expect(interpolateSecrets({ k: ['${file:rel-secret}'] }, tmp, {}, problems)).toEqual({ k: ['s3cret'] });
    expect(interpolateSecrets({ k: ['${file:nope}'] }, tmp, {}, problems)).toEqual({ k: [''] });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(new RegExp(`^k\\.0: cannot read secret file ${resolve(tmp, 'nope')}: `));
  });
});

describe('delivery.routes', () => {
  it('takes "host:port" strings, defaulting to port 25', () => {
    const c = parseConfigText(`${HOST}delivery:\n  routes:\n    example.org: "mx.example.org:2525"\n    example.net: relay.example.net\n    v6.example: "[2001:db8::25]:587"\n`, 'x.yaml', {});
    expect(c.delivery.routes).toEqual({
      'example.org': { host: 'mx.example.org', port: 2525 },
      'example.net': { host: 'relay.example.net', port: 25 },
      'v6.example': { host: '2001:db8::25', port: 587 },
    });
  });

  it('takes {nexthop, tls} objects', () => {
    const c = parseConfigText(`${HOST}delivery:\n  routes:\n    "*.corp.example": { nexthop: "10.0.0.5:25", tls: encrypt }\n    "*": { nexthop: smarthost.example }\n`, 'x.yaml', {});
    expect(c.delivery.routes).toEqual({
      '*.corp.example': { nexthop: { host: '10.0.0.5', port: 25 }, tls: 'encrypt' },
      '*': { nexthop: { host: 'smarthost.example', port: 25 } },
    });
  });

  it('lower-cases route domains', () => {
    const c = parseConfigText(`${HOST}delivery:\n  routes:\n    Example.ORG: "mx.example.org:25"\n`, 'x.yaml', {});
    expect(Object.keys(c.delivery.routes)).toEqual(['example.org']);
  });

  it('bad next hops and TLS levels name the route', () => {
    expect(onlyProblem(`${HOST}delivery:\n  routes:\n    example.org: "mx.example.org:0"\n`)).toMatch(/^delivery\.routes\.example\.org/);
    expect(onlyProblem(`${HOST}delivery:\n  routes:\n    example.org: { nexthop: "mx:25", tls: strict }\n`)).toMatch(/^delivery\.routes\.example\.org/);
    // Both what is wrong and what is missing.
    expect(problemsOf(`${HOST}delivery:\n  routes:\n    example.org: { host: "mx:25" }\n`).sort()).toEqual([
      'delivery.routes.example.org.nexthop: required but missing',
      'delivery.routes.example.org: unknown key host (check the spelling against the config reference in README.md)',
    ]);
  });

  it('a bad route domain names the key', () => {
    expect(onlyProblem(`${HOST}delivery:\n  routes:\n    "bad domain": "mx:25"\n`)).toMatch(/^delivery\.routes\.bad domain: /);
  });
});

describe('parseHostPort', () => {
  it.each([
    ['127.0.0.1:2525', undefined, { host: '127.0.0.1', port: 2525 }],
    ['[::1]:25', undefined, { host: '::1', port: 25 }],
    ['[::1]', 25, { host: '::1', port: 25 }],
    ['mx.example.org', 25, { host: 'mx.example.org', port: 25 }],
    ['mx.example.org:65535', 25, { host: 'mx.example.org', port: 65535 }],
  ] as const)('%s (default %s)', (text, def, expected) => {
    expect(parseHostPort(text, def)).toEqual(expected);
  });

  it.each(['mx.example.org', 'host:', 'host:0', 'host:65536', 'host:-1', '::1:25', 'a b:25', '[::1', ':25', ''])('refuses %j without a default port', (text) => {
    expect(parseHostPort(text)).toBeUndefined();
  });

  it('allows port 0 only when asked', () => {
    expect(parseHostPort('127.0.0.1:0')).toBeUndefined();
    expect(parseHostPort('127.0.0.1:0', undefined, true)).toEqual({ host: '127.0.0.1', port: 0 });
  });
});

describe('config files', () => {
  const shipped = fileURLToPath(new URL('../../config/postern.yaml', import.meta.url));

  it('loading config/postern.yaml (the shipped default) succeeds', () => {
    const c = loadConfigFile(shipped, {});
    expect(c.hostname).toBe('postern.localhost');
    expect(c.dataDir).toBe('var');
    expect(c.smtp.listen).toEqual([{ host: '127.0.0.1', port: 2525 }]);
    expect(c.smtp.clients).toEqual([{ name: 'local', cidr: ['127.0.0.0/8', '::1'], requireTls: false }]);
    expect(c.smtp.limits.maxMessageSize).toBe(50 * 1024 * 1024);
    expect(c.delivery.tls.default).toBe('verify');
    expect(c.delivery.retry).toEqual({ initialDelay: 300_000, maxDelay: 3_600_000, lifetime: 432_000_000 });
  });

  it('a config file that cannot be read says how to pass another', () => {
    const missing = join(tmp, 'no-such.yaml');
    let caught: unknown;
    try {
      loadConfigFile(missing, {});
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).file).toBe(missing);
    expect((caught as ConfigError).problems[0]).toMatch(/^cannot read the config file: ENOENT.*\(pass --config FILE or set POSTERN_CONFIG\)$/);
  });

  it('loadConfigFile reports problems against the file name', () => {
    const bad = join(tmp, 'bad.yaml');
    writeFileSync(bad, `${HOST}smtp:\n  listen: ["x"]\n`);
    expect(() => loadConfigFile(bad, {})).toThrow(`invalid configuration in ${bad}:\n  - smtp.listen.0: "x" is not host:port`);
  });

  it('configPathFrom: --config, then POSTERN_CONFIG, then the default', () => {
    expect(configPathFrom('/etc/postern.yaml', { POSTERN_CONFIG: '/env.yaml' })).toBe('/etc/postern.yaml');
    expect(configPathFrom(undefined, { POSTERN_CONFIG: '/env.yaml' })).toBe('/env.yaml');
    expect(configPathFrom(undefined, {})).toBe(resolve(DEFAULT_CONFIG_PATH));
    expect(configPathFrom('rel.yaml', {})).toBe(resolve(process.cwd(), 'rel.yaml'));
  });
});
