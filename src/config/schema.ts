import { isIP } from 'node:net';
import { hostname as osHostname } from 'node:os';
import { z } from 'zod';
import { parseDuration, parseSize } from './units.js';
import { parseCidr } from '../ingress/cidr.js';
import { isPasswordHash } from '../ingress/password-hash.js';
import { subscriptionProblem } from '../events/webhooks-events.js';
import { isLoopbackHost } from '../api/loopback.js';
import { parseKeyMaterial } from '../common/envelope-crypto.js';
import { isPemText } from '../common/pem-or-file.js';
import { caTextProblem } from '../archive/sink-ca.js';
import { asciiDomainPattern } from '../common/domain-name.js';
import { noticeTemplate } from './notice-template.js';
import { checkPolicySection } from '../policy/section.js';

/**
 * "5m", "1h", "250ms" or plain milliseconds → milliseconds, for a span only ever compared
 * with the clock (an age, an expiry, a lifetime): any length.
 */
const longDuration = z.union([z.number().int().nonnegative(), z.string()], { error: 'expected a duration such as 30s, 5m, 1h, 5d, or milliseconds' }).transform((v, ctx) => {
  const ms = typeof v === 'number' ? v : parseDuration(v);
  if (ms === undefined) {
    ctx.addIssue({ code: 'custom', message: `"${v}" is not a duration (use e.g. 30s, 5m, 1h, 5d)` });
    return z.NEVER;
  }
  return ms;
});

/** The longest wait a Node.js timer can hold (2^31-1 ms, about 24.8 days). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * A duration the gateway waits out with a timer (timeouts, intervals, delays). Node.js
 * cannot hold a timer longer than MAX_TIMER_MS: it warns and fires after 1 ms instead, so
 * `health.probeInterval: 30d` probed without pause and `smtp.limits.commandTimeout: 30d` cut
 * every session at once. Such a value is refused, naming its key.
 */
const duration = longDuration.refine((ms) => ms <= MAX_TIMER_MS, { message: `must be at most 24d (${MAX_TIMER_MS} ms): the gateway waits this long with a timer, and timers cannot wait longer` });

/** "25MB", "64KB" or plain bytes → bytes. */
const size = z.union([z.number().int().positive(), z.string()], { error: 'expected a size such as 512KB, 25MB, or bytes' }).transform((v, ctx) => {
  const bytes = typeof v === 'number' ? v : parseSize(v);
  if (bytes === undefined || bytes <= 0) {
    ctx.addIssue({ code: 'custom', message: `"${v}" is not a size (use e.g. 512KB, 25MB)` });
    return z.NEVER;
  }
  return bytes;
});

export interface HostPort {
  host: string;
  port: number;
}

/** Parses "host:port" and "[v6]:port". */
export function parseHostPort(text: string, defaultPort?: number, allowPortZero = false): HostPort | undefined {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  const plain = /^([^:\s]+)(?::(\d+))?$/.exec(text);
  const m = bracketed ?? plain;
  if (!m) return undefined;
  const port = m[2] !== undefined ? Number(m[2]) : defaultPort;
  if (port === undefined || !Number.isInteger(port) || port < (allowPortZero ? 0 : 1) || port > 65535) return undefined;
  return { host: m[1] as string, port };
}

const hostPort = (defaultPort?: number, allowPortZero = false) =>
  z.string().transform((v, ctx) => {
    const hp = parseHostPort(v.trim(), defaultPort, allowPortZero);
    if (!hp) {
      ctx.addIssue({ code: 'custom', message: `"${v}" is not host:port (e.g. 127.0.0.1:2525 or [::1]:25)` });
      return z.NEVER;
    }
    return hp;
  });

const DOMAIN_PATTERN = /^(\*\.)?[a-z0-9\u0080-\uffff]([a-z0-9\u0080-\uffff-]*[a-z0-9\u0080-\uffff])?(\.[a-z0-9\u0080-\uffff]([a-z0-9\u0080-\uffff-]*[a-z0-9\u0080-\uffff])?)*$/;
const DOMAIN_MESSAGE = 'not a domain name (e.g. example.org, or *.example.org for its subdomains, or *)';
const isDomainPattern = (v: string) => v === '*' || DOMAIN_PATTERN.test(v);

/**
 * Domains and domain patterns of the config are kept in the comparable form (lower case,
 * A-labels: src/common/domain-name.ts), whichever form the admin wrote, because the
 * envelope's domains are compared in it (smtp-server hands over U-labels).
 */
const comparablePattern = (v: string) => {
  const lower = v.trim().toLowerCase();
  return isDomainPattern(lower) ? (asciiDomainPattern(lower) ?? lower) : lower;
};

const domainName = z.string().transform(comparablePattern).refine(isDomainPattern, { message: DOMAIN_MESSAGE });

/** A map keyed by domain pattern; a bad key is reported under its own name. */
const domainMap = <T extends z.ZodType>(value: T) =>
  z.record(z.string(), value).transform((rec, ctx) => {
    const out: Record<string, z.output<T>> = {};
    const writtenAs = new Map<string, string>();
    for (const [key, v] of Object.entries(rec)) {
      const k = comparablePattern(key);
      if (!isDomainPattern(k)) ctx.addIssue({ code: 'custom', path: [key], message: DOMAIN_MESSAGE });
      // "Bücher.example" and "xn--bcher-kva.example" are one domain: two entries for it
      // would leave one silently unused.
      const earlier = writtenAs.get(k);
      if (earlier !== undefined) ctx.addIssue({ code: 'custom', path: [key], message: `names the same domain as "${earlier}" (${k}): keep one of the two` });
      writtenAs.set(k, key);
      out[k] = v as z.output<T>;
    }
    return out;
  });

export const TLS_LEVELS = ['none', 'may', 'encrypt', 'verify'] as const;

/**
 * Names a master key in stored records (portal, archive). Bounded: the id is written in
 * every archive item's fixed 512-byte header (item-file.ts), which a long one overflows.
 */
const MASTER_KEY_ID_MAX = 64;
const masterKeyId = z
  .string()
  .regex(/^[\w.-]+$/, { message: 'letters, digits, dot, dash and underscore only (e.g. key-2026)' })
  .max(MASTER_KEY_ID_MAX, { message: `at most ${MASTER_KEY_ID_MAX} characters (it is stored with everything the key wraps); use a short name such as key-2026` });

/**
 * A list of master keys whose ids are unique: what a key wrapped is found again by the
 * id stored beside it, so a new key listed under an old key's id would be tried in its
 * place and everything the old key wrapped could no longer be read.
 */
const masterKeyList = <K extends z.ZodType<{ id: string }>>(key: K) =>
  z.array(key).superRefine((keys, ctx) => {
    const first = new Map<string, number>();
    keys.forEach((k, i) => {
      const earlier = first.get(k.id);
      if (earlier === undefined) first.set(k.id, i);
      else ctx.addIssue({ code: 'custom', path: [i, 'id'], message: `"${k.id}" is already the id of entry ${earlier}: every key needs an id of its own (give the new key a new id, e.g. key-2027, and keep the old key under its old id)` });
    });
  });
export type TlsLevel = (typeof TLS_LEVELS)[number];

const cidr = z.string().refine((v) => parseCidr(v) !== undefined, {
  message: 'not an IP address or CIDR block (e.g. 10.0.0.0/8, 2001:db8::/32, 127.0.0.1)',
});

const clientSchema = z.strictObject({
  name: z.string().optional(),
  cidr: z.union([cidr, z.array(cidr).min(1)], { error: 'expected an IP address or CIDR block, or a list of them' }).transform((v) => (Array.isArray(v) ? v : [v])),
  senderDomains: z.array(domainName).optional(),
  requireTls: z.boolean().default(false),
});

const authUserSchema = z.strictObject({
  username: z.string().min(1),
  passwordHash: z.string().refine(isPasswordHash, {
    message: 'must be a scrypt hash made by `postern hash-password` (scrypt$N$r$p$salt$hash)',
  }),
  senderDomains: z.array(domainName).optional(),
});

const routeSchema = z.union(
  [
    hostPort(25),
    z.strictObject({
      nexthop: hostPort(25),
      tls: z.enum(TLS_LEVELS).optional(),
    }),
  ],
  { error: `expected "host:port" or { nexthop: "host:port", tls: ${TLS_LEVELS.join('|')} }` },
);

/** What Node's resolver takes: an IP address, with a port as 10.0.0.53:5353 or [2001:db8::53]:5353. */
export function isDnsServer(text: string): boolean {
  if (isIP(text)) return true;
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  const v4 = /^([\d.]+):(\d+)$/.exec(text);
  const ip = v6 ? isIP(v6[1] as string) === 6 : v4 ? isIP(v4[1] as string) === 4 : false;
  const port = Number((v6 ?? v4)?.[2] ?? 53);
  return ip && Number.isInteger(port) && port >= 1 && port <= 65535;
}

const dnsServer = z
  .string()
  .transform((v) => v.trim())
  .refine(isDnsServer, { message: 'not a DNS server address: give an IP address, optionally with a port (10.0.0.53, 10.0.0.53:5353, [2001:db8::53]:5353)' });

const smtpSchema = z.strictObject({
  /** Port 0 picks a free port (tests). */
  listen: z.array(hostPort(undefined, true)).min(1).prefault(['0.0.0.0:25']),
  /** Text after "220 <hostname> ESMTP" in the greeting. */
  banner: z.string().default('Postern'),
  tls: z
    .strictObject({
      cert: z.string().optional(),
      key: z.string().optional(),
      minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2'),
    })
    .prefault({})
    .refine((t) => Boolean(t.cert) === Boolean(t.key), { message: 'set both cert and key, or neither (a dev certificate is then made)' }),
  clients: z.array(clientSchema).default([]),
  auth: z
    .strictObject({
      users: z.array(authUserSchema).default([]),
      /** Failed AUTH attempts from one client address within failureWindow that lock it out for lockout. */
      maxFailures: z.number().int().positive().default(5),
      failureWindow: longDuration.default(15 * 60_000),
      lockout: longDuration.default(15 * 60_000),
      /** Each failed attempt is answered only after this wait. */
      failureDelay: duration.default(1000),
    })
    .prefault({}),
  limits: z
    .strictObject({
      maxMessageSize: size.default(50 * 1024 * 1024),
      maxRecipients: z.number().int().positive().default(1000),
      maxHeaderSize: size.default(256 * 1024),
      maxConnections: z.number().int().positive().default(1000),
      maxConnectionsPerIp: z.number().int().positive().default(100),
      commandTimeout: duration.default(300_000),
      dataTimeout: duration.default(600_000),
    })
    .prefault({}),
  /** SMTP smuggling guard: what to do with a bare CR or LF inside DATA. */
  bareLineEndings: z.enum(['reject', 'normalize']).default('reject'),
  loopGuard: z
    .strictObject({
      maxReceived: z.number().int().positive().default(50),
      /** Reject when the message already carries more than this many of our own stamps. */
      maxOwnStamps: z.number().int().nonnegative().default(1),
    })
    .prefault({}),
});

const deliverySchema = z.strictObject({
  routes: domainMap(routeSchema).prefault({}),
  /** Port used for MX deliveries (25; tests use another). */
  mxPort: z.number().int().min(1).max(65535).default(25),
  dns: z
    .strictObject({
      servers: z.array(dnsServer).optional(),
      timeout: duration.default(5000),
      /** How long a resolved route is reused (0 = every attempt asks DNS). */
      cacheTtl: longDuration.default(60_000),
    })
    .prefault({}),
  tls: z
    .strictObject({
      trust: z.array(z.string()).default([]),
      default: z.enum(TLS_LEVELS).default('verify'),
      domains: domainMap(z.enum(TLS_LEVELS)).prefault({}),
    })
    .prefault({}),
  retry: z
    .strictObject({
      initialDelay: duration.default(300_000),
      maxDelay: duration.default(3_600_000),
      lifetime: longDuration.default(5 * 86_400_000),
    })
    .prefault({}),
  pool: z
    .strictObject({
      maxConnectionsPerHost: z.number().int().positive().default(10),
      maxMessagesPerConnection: z.number().int().positive().default(100),
      idleTimeout: duration.default(30_000),
    })
    .prefault({}),
  /** MTA-STS (RFC 8461) for MX deliveries. */
  mtaSts: z
    .strictObject({
      enabled: z.boolean().default(true),
      /** HTTPS port of mta-sts.<domain> (443; tests use another). */
      port: z.number().int().min(1).max(65535).default(443),
      timeout: duration.default(10_000),
    })
    .prefault({}),
  concurrency: z.number().int().positive().default(200),
  /**
   * Recipients in one SMTP transaction; more go in further transactions on the same
   * connection (RFC 5321 §4.5.3.1.10: a server must take 100 and may refuse more).
   */
  maxRecipientsPerTransaction: z.number().int().positive().default(100),
  /**
   * Bytes of messages delivery attempts may hold whole in memory at once (the portal,
   * OpenPGP, S/MIME, certificate harvesting need the whole message; everything else is
   * streamed). Attempts past it wait their turn; a larger message goes alone.
   */
  wholeMessageMemory: size.default(64 * 1024 * 1024),
  timeouts: z
    .strictObject({
      connect: duration.default(30_000),
      greeting: duration.default(60_000),
      socket: duration.default(300_000),
      /** The reply to the end of the message (RFC 5321 §4.5.3.2.6: 10 minutes). */
      dataDone: duration.default(600_000),
    })
    .prefault({}),
});

export const configSchema = z.strictObject({
  dataDir: z.string().default('var'),
  /**
   * Gateway processes sharing the SMTP port, each with its own spool shard: one Node
   * process uses one core. "auto" = one per available CPU.
   */
  workers: z.union([z.literal('auto'), z.number().int().min(1).max(64)], { error: 'expected "auto" or a number of processes from 1 to 64' }).default('auto'),
  hostname: z
    .string()
    .default(osHostname())
    .refine((v) => /^[A-Za-z0-9.-]+$/.test(v) && !isIP(v), { message: 'must be the gateway\'s DNS name (e.g. postern.example.org)' }),
  log: z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    })
    .prefault({}),
  smtp: smtpSchema.prefault({}),
  queue: z
    .strictObject({
      backend: z.enum(['fs', 'redis']).default('fs'),
      /**
       * Group commit: under load, transactions whose DATA ends within this window share
       * one flush to disk. Fewer flushes, less CPU per message; an idle gateway never waits.
       */
      commitWindow: duration.default(3),
      /**
       * fs backend: the segment log's active file is closed this long after its first
       * message, so that once its messages are final it is deleted, and with it the text
       * of delivered mail (otherwise kept until 64 MB more had arrived).
       */
      segmentMaxAge: duration.default(600_000).refine((ms) => ms >= 100, { message: 'must be at least 100ms' }),
    })
    .prefault({}),
  /** The shared Redis of several instances (queue.backend: redis). */
  redis: z
    .strictObject({
      /** redis://[:password@]host:port[/db], or rediss:// for TLS. */
      url: z.string().regex(/^rediss?:\/\//, { message: 'must start with redis:// or rediss:// (TLS)' }).default('redis://127.0.0.1:6379'),
      /** Every key Postern writes starts with this, so several deployments can share a Redis. */
      keyPrefix: z.string().min(1).default('postern:'),
      /** CA certificate file (PEM) that the server's certificate must chain to, for rediss://. */
      tls: z.strictObject({ ca: z.string().optional() }).optional(),
      /**
       * When Redis cannot keep an acknowledged message through a crash (no AOF with
       * appendfsync always, and no replica acknowledgement): log a warning, or refuse to start.
       */
      durability: z.enum(['warn', 'refuse']).default('warn'),
      /** After each commit, WAIT for this many replicas to acknowledge (0: don't wait). */
      waitReplicas: z.number().int().nonnegative().default(0),
      waitTimeout: duration.default(1000),
      /** A lease not renewed for this long expires, and another instance takes the message. */
      leaseTime: duration.default(60_000).refine((ms) => ms >= 1000, { message: 'must be at least 1s (leases are renewed every third of it; shorter ones expire under ordinary load and deliveries run twice)' }),
      /**
       * A Redis command not answered within this long fails: a commit then gets 451 and is
       * undone, so a Redis that hangs or sits behind a network partition cannot hold SMTP
       * sessions. WAIT (redis.waitReplicas) is a command too, hence longer than waitTimeout.
       */
      commandTimeout: duration.default(5000),
    })
    .refine((r) => r.waitReplicas === 0 || r.commandTimeout > r.waitTimeout, { path: ['commandTimeout'], message: 'must be longer than redis.waitTimeout when redis.waitReplicas is set (WAIT is a Redis command too)' })
    .refine((r) => r.leaseTime > r.commandTimeout, { path: ['leaseTime'], message: 'must be longer than redis.commandTimeout (a lease must outlive a heartbeat that Redis leaves unanswered until it times out)' })
    .refine((r) => !r.tls?.ca || r.url.startsWith('rediss://'), { path: ['tls', 'ca'], message: 'is set but redis.url does not start with rediss:// (the CA is only used for TLS): use rediss://, or remove redis.tls.ca' })
    .prefault({}),
  delivery: deliverySchema.prefault({}),
  shutdown: z
    .strictObject({
      timeout: duration.default(30_000),
    })
    .prefault({}),
  portal: z
    .strictObject({
      enabled: z.boolean().default(true),
      /** HTTPS listener of the recipient web app. */
      listen: hostPort(undefined, true).prefault('127.0.0.1:8443'),
      /** The address recipients use (behind a reverse proxy: its URL); links in notices. */
      publicUrl: z.url().optional(),
      /** Certificate for the listener; default: the SMTP certificate. */
      tls: z.strictObject({ cert: z.string().optional(), key: z.string().optional() }).prefault({}),
      /**
       * Master keys (32 bytes, base64 or hex:...) wrapping each message's data key. The
       * first encrypts new messages; keep older ones listed to read what they wrapped,
       * and run `postern portal rotate-key`. Unset: a development key is made under
       * <dataDir>/portal/master.key.
       */
      masterKeys: masterKeyList(z.strictObject({ id: masterKeyId, key: z.string() })).default([]),
      /** How long a message stays readable, then it is destroyed. */
      expiry: longDuration.default(30 * 86_400_000),
      organisation: z
        .strictObject({
          name: z.string().default('Postern Secure Mail'),
          /** The logo in notices (mail clients load it from there). */
          logoUrl: z.url().optional(),
          /** The logo on the portal's pages (PNG, SVG, JPEG, GIF or WebP), served by the portal itself. */
          logoFile: z.string().regex(/\.(png|svg|jpe?g|gif|webp)$/i, { message: 'must be a .png, .svg, .jpg, .gif or .webp file' }).optional(),
          /** Extra text in the notice (no PHI: it travels by ordinary mail). */
          noticeText: z.string().default('You have received a secure message. Open it with the link below.'),
          /** From address of notices and password-reset mails; default secure-notice@<hostname>. */
          fromAddress: z.string().optional(),
          /**
           * The message notice's own text and HTML (e.g. `html: ${file:notice.html}`), with
           * {{organisation}}, {{logoUrl}}, {{noticeText}}, {{sender}}, {{link}} and
           * {{subject}} (empty unless showSubject); each must hold {{link}}.
           */
          noticeTemplate: z
            .strictObject({ text: noticeTemplate.optional(), html: noticeTemplate.optional() })
            .optional(),
        })
        .prefault({}),
      /** Show the original subject in notices (off: it may carry PHI). */
      showSubject: z.boolean().default(false),
      readReceipts: z.boolean().default(false),
      /** Let recipients reply to all original recipients, not only to the sender. */
      replyAll: z.boolean().default(false),
      /**
       * From and envelope sender of secure replies (the patient is Reply-To); default
       * secure-reply@<hostname>. An address of a domain the gateway may send for.
       */
      replyFrom: z
        .string()
        .regex(/^[^\s@<>"(),;:\\[\]]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$/, { message: 'must be a plain address, e.g. secure-reply@example.org' })
        .optional(),
      sessions: z.strictObject({ idle: longDuration.default(15 * 60_000), absolute: longDuration.default(12 * 3_600_000) }).prefault({}),
      /**
       * Whose X-Forwarded-For names the client (the rate limits count per client): a
       * reverse proxy on this machine by default; list your proxies' addresses or CIDR
       * blocks (or loopback, linklocal, uniquelocal); true believes anyone's header.
       */
      trustProxy: z
        .union([z.boolean(), z.array(z.union([z.enum(['loopback', 'linklocal', 'uniquelocal']), cidr]))], { error: 'expected true, false, or a list of loopback, linklocal, uniquelocal, IP addresses and CIDR blocks' })
        .default(['loopback']),
      /**
       * Per client address (IPv6: per /64) and window: new visitor sessions, login attempts
       * and password-reset requests; and reset requests per account asked for (each one a
       * mail or a paid SMS). Secure replies per account asked for, and their bytes, per
       * replyWindow (each one a DKIM-signed message from the gateway's own address).
       */
      rateLimit: z
        .strictObject({
          window: duration.default(10 * 60_000),
          sessions: z.number().int().positive().default(60),
          logins: z.number().int().positive().default(30),
          resets: z.number().int().positive().default(10),
          resetsPerAccount: z.number().int().positive().default(3),
          replyWindow: duration.default(3_600_000),
          replies: z.number().int().positive().default(30),
          replyBytes: size.default(100 * 1024 * 1024),
        })
        .prefault({}),
      sms: z
        .strictObject({
          /** Recipients <digits>@<domain> get the notice by SMS. */
          domain: z.string().default('secure.text'),
          defaultCountry: z.string().regex(/^\d{1,3}$/, { message: 'a country calling code of 1 to 3 digits, without + (e.g. 1, 44)' }).default('1'),
          /** A Twilio-style REST API: POST {url}/Accounts/{accountSid}/Messages.json. */
          provider: z
            .strictObject({ url: z.url(), accountSid: z.string(), authToken: z.string(), from: z.string() })
            .optional(),
        })
        .prefault({}),
    })
    .prefault({}),
  keys: z
    .strictObject({
      /** Where recipients' OpenPGP keys are looked for, in order; the first usable key wins. */
      discovery: z.array(z.enum(['store', 'wkd', 'keyserver'])).min(1).default(['store', 'wkd']),
      /** Web Key Directory: https://openpgpkey.<domain> (advanced), then https://<domain> (direct). */
      wkd: z.strictObject({ port: z.number().int().min(1).max(65535).default(443), timeout: duration.default(5000) }).prefault({}),
      /** A keyserver (e.g. https://keys.openpgp.org); used only when listed in discovery and url is set. */
      keyserver: z
        .strictObject({
          url: z.url().refine((u) => u.startsWith('https://'), { message: 'must be an https:// URL' }).optional(),
          protocol: z.enum(['vks', 'hkp']).default('vks'),
          timeout: duration.default(5000),
        })
        .prefault({}),
      /** How long a key found by WKD or a keyserver is reused. */
      cacheTtl: longDuration.default(86_400_000),
      /** How long "no key there" is remembered before asking again. */
      negativeTtl: longDuration.default(3_600_000),
      /** How long a source that failed (timeout, connection, TLS, 5xx) is not asked again. */
      errorTtl: longDuration.default(300_000),
      /** CA certificate files (PEM) recipients' S/MIME certificates must chain to. */
      smimeTrust: z.array(z.string()).default([]),
      /** Intermediate CA files (PEM) that may complete a chain to smimeTrust (certificates can bring their own). */
      smimeIntermediates: z.array(z.string()).default([]),
      /** CRL files (PEM or DER) of those CAs; a certificate they revoke is never used. */
      smimeCrls: z.array(z.string()).default([]),
      /** Store certificates of S/MIME-signed messages passing through (after validation). */
      harvest: z.boolean().default(false),
    })
    .prefault({}),
  /** Organisation identities per sender domain (exact, or *.parent): signing keys. */
  identities: domainMap(
    z.strictObject({
      /** Armored OpenPGP private key: a file, or the key itself (e.g. ${file:...}). */
      pgpKey: z.string().optional(),
      pgpPassphrase: z.string().optional(),
      /** S/MIME certificate and private key (PEM: files or the text itself). */
      smimeCert: z.string().optional(),
      smimeKey: z.string().optional(),
      /** Passphrase of an encrypted smimeKey. */
      smimeKeyPassphrase: z.string().optional(),
    }).refine((i) => Boolean(i.smimeCert) === Boolean(i.smimeKey), { message: 'set both smimeCert and smimeKey, or neither' }),
  ).prefault({}),
  protect: z
    .strictObject({
      pgp: z
        .strictObject({
          /** Sign with the sender domain's identities[].pgpKey when there is one. */
          sign: z.boolean().default(true),
          /** Also encrypt to this public key (file or armored text) so compliance can read. */
          escrowKey: z.string().optional(),
          /** Replace the outer Subject ("..."); the real one stays inside. */
          protectSubject: z.boolean().default(false),
          /** openpgp encrypts in memory: above this PGP is not used (the next method is). */
          maxSize: size.default(25 * 1024 * 1024),
        })
        .prefault({}),
      smime: z
        .strictObject({
          /** Sign with the sender domain's identities[].smimeCert when there is one. */
          sign: z.boolean().default(true),
          /** Also encrypt to this certificate (file or PEM) so compliance can read. */
          escrowCert: z.string().optional(),
          /** S/MIME is built in memory: above this it is not used (the next method is). */
          maxSize: size.default(10 * 1024 * 1024),
        })
        .prefault({}),
    })
    .prefault({}),
  dkim: z
    .strictObject({
      /** Signing keys; a message is signed with every key of its From domain (or the nearest parent). */
      keys: z
        .array(
          z.strictObject({
            domain: domainName.refine((d) => !d.includes('*'), { message: 'a signing domain, not a pattern' }),
            selector: z.string().regex(/^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$/, { message: 'letters, digits, dot, dash, underscore' }),
            /** PEM private key: a file, or the key itself (e.g. ${file:...}). */
            privateKey: z.string(),
            algorithm: z.enum(['rsa-sha256', 'ed25519-sha256']).default('rsa-sha256'),
          }),
        )
        .default([]),
    })
    .prefault({}),
  policy: z
    .object({
      /**
       * The per-recipient policy file, hot-reloaded. Unset: config/policy.yaml when it
       * exists, else the built-in healthcare default. Or, instead of `file`, the policy
       * itself: the keys of a policy file (rules, domains, ...) in this section.
       */
      file: z.string().optional(),
    })
    .catchall(z.unknown())
    .superRefine(checkPolicySection)
    .prefault({}),
  /** The compliance archive: a journal copy of every message before delivery (README "Compliance archive"). */
  archive: z
    .strictObject({
      enabled: z.boolean().default(true),
      /** Where journal items go; every sink must store an item before the message is delivered. */
      sinks: z
        .array(
          z.discriminatedUnion('type', [
            /** Encrypted files under <dataDir>/archive. */
            z.strictObject({ type: z.literal('fs') }),
            /** An envelope-journal report (envelope data + the original attached) to an archive mailbox. */
            z.strictObject({
              type: z.literal('smtp'),
              server: hostPort(25),
              to: z.string().regex(/^[^@\s]+@[^@\s]+$/, { message: 'must be the archive mailbox address' }),
              /** Sender of reports; default postern-journal@<hostname>. */
              from: z.string().optional(),
              /** Name the server's certificate must carry; default the host. */
              servername: z.string().optional(),
              /** Extra CA certificates the server may chain to (besides the system roots): PEM files, or PEM text (e.g. ${file:...}). */
              ca: z
                .array(
                  z.string().superRefine((v, ctx) => {
                    const problem = isPemText(v) ? caTextProblem(v) : undefined;
                    if (problem) ctx.addIssue({ code: 'custom', message: problem });
                  }),
                )
                .default([]),
              auth: z.strictObject({ user: z.string(), pass: z.string() }).optional(),
              timeout: duration.default(30_000),
            }),
          ]),
        )
        .min(1)
        .refine((sinks) => sinks.filter((x) => x.type === 'fs').length <= 1, { message: 'at most one fs sink (it lives under dataDir)' })
        .default([{ type: 'fs' }]),
      /**
       * Master keys (32 bytes, base64 or hex:...) wrapping each item's data key, as
       * portal.masterKeys: the first encrypts new items, older ones still unwrap; run
       * `postern archive rotate-key` after adding one. Unset: a development key is made
       * under <dataDir>/archive/master.key.
       */
      masterKeys: masterKeyList(
        z.strictObject({
          id: masterKeyId,
          // Checked here, so check-config says it, not the first message journaled.
          key: z.string().refine((k) => parseKeyMaterial(k) !== undefined, { message: 'must be 32 bytes, base64 (or hex:...); make one with: openssl rand -base64 32' }),
        }),
      ).default([]),
      /** true: when journaling fails, deliver anyway (logged loudly). false: do not deliver, retry. */
      failOpen: z.boolean().default(false),
      retention: z
        .strictObject({
          /** Six years. */
          defaultDays: z.number().int().positive().default(2192),
          /** The first rule that matches an item decides its retention; else defaultDays. */
          rules: z
            .array(
              z
                .strictObject({
                  id: z.string().optional(),
                  sender: z.string().optional(),
                  recipient: z.string().optional(),
                  /** Sender's or any recipient's domain: example.org, *.example.org. */
                  domain: domainName.optional(),
                  /** A detector category found in the message, e.g. phi. */
                  category: z.string().optional(),
                  days: z.number().int().positive(),
                })
                .refine((r) => r.sender || r.recipient || r.domain || r.category, { message: 'give at least one of sender, recipient, domain, category' }),
            )
            .default([]),
        })
        .prefault({}),
      /** How often the gateway purges items past their retention. */
      purgeInterval: longDuration.default(86_400_000),
      /** Bounds of keyword search (content is decrypted to search it). */
      searchLimits: z
        .strictObject({
          maxItems: z.number().int().positive().default(10_000),
          maxBytes: size.default(1024 * 1024 * 1024),
        })
        .prefault({}),
    })
    .prefault({}),
  /** The admin listener: /metrics, /healthz, /readyz and the admin API (README "Metrics, health and the admin API"). */
  admin: z
    .strictObject({
      enabled: z.boolean().default(true),
      listen: hostPort(undefined, true).prefault('127.0.0.1:9025'),
      /** HTTPS with the gateway's certificate (smtp.tls, or the development one), or with its own. */
      tls: z
        .strictObject({ enabled: z.boolean().default(false), cert: z.string().optional(), key: z.string().optional() })
        .prefault({})
        .refine((t) => Boolean(t.cert) === Boolean(t.key), { message: 'set both cert and key, or neither (the SMTP certificate is then used)' }),
      /** API keys (header X-API-Key), stored as `postern hash-api-key` hashes. */
      apiKeys: z
        .array(
          z.strictObject({
            name: z.string().regex(/^[\w.@-]+$/, { message: 'letters, digits and . _ @ - only (it is logged as the actor)' }),
            hash: z.string().refine(isPasswordHash, { message: 'must be a scrypt hash made by `postern hash-api-key` (scrypt$N$r$p$salt$hash)' }),
            role: z.enum(['read-only', 'operator', 'admin']),
          }),
        )
        .default([]),
      /** HTTP Basic users, with `postern hash-password` hashes. */
      users: z
        .array(
          z.strictObject({
            name: z.string().regex(/^[\w.@-]+$/, { message: 'letters, digits and . _ @ - only (it is logged as the actor)' }),
            passwordHash: z.string().refine(isPasswordHash, { message: 'must be a scrypt hash made by `postern hash-password` (scrypt$N$r$p$salt$hash)' }),
            role: z.enum(['read-only', 'operator', 'admin']),
          }),
        )
        .default([]),
      /** true: /metrics needs a principal (any role) like the API. */
      metricsAuth: z.boolean().default(false),
      /** Failed authentications from one address within `window` before it gets 429 (until the oldest ages out). */
      authLimit: z
        .strictObject({ failures: z.number().int().min(1).default(10), window: duration.default(300_000).refine((ms) => ms >= 1000, { message: 'must be at least 1s' }) })
        .prefault({}),
      /** What to do when admin.listen is not a loopback address and admin.tls is off: warn at start, or refuse the config. */
      cleartext: z.enum(['warn', 'refuse']).default('warn'),
    })
    .prefault({})
    .refine((a) => new Set([...a.apiKeys, ...a.users].map((p) => p.name)).size === a.apiKeys.length + a.users.length, {
      message: 'every apiKeys and users name must be unique (names are the actor in the audit trail)',
    })
    .refine((a) => a.cleartext !== 'refuse' || a.tls.enabled || isLoopbackHost(a.listen.host), {
      message: 'is not a loopback address and admin.tls.enabled is false: API keys and passwords would cross the network in clear (enable admin.tls, listen on 127.0.0.1, or set admin.cleartext: warn)',
      path: ['listen'],
    }),
  /** Readiness: when any check fails, /readyz answers 503 and SMTP refuses new mail with 451/452. */
  health: z
    .strictObject({
      /** Not ready when the disk holding dataDir is at least this full (percent of the space available to Postern). */
      diskFullPercent: z.number().min(1).max(100).default(95),
      /** Not ready when less than this is free on that disk. */
      diskMinFree: size.default(1024 * 1024 * 1024),
      /** How often the spool is probed (a small file created, fsynced, removed) and the disk checked. */
      probeInterval: duration.default(5000).refine((ms) => ms >= 100, { message: 'must be at least 100ms' }),
    })
    .prefault({}),
  /** The hash-chained audit trail under <dataDir>/audit (README "Audit trail, tracking and webhooks"). */
  audit: z
    .strictObject({
      enabled: z.boolean().default(true),
      /** Records of events within this window share one write and one flush to disk. */
      flushInterval: duration.default(50).refine((ms) => ms >= 1 && ms <= 10_000, { message: 'between 1ms and 10s' }),
      /** true: not ready (/readyz 503, SMTP 451 4.3.0) while the trail cannot be written, so no mail goes unrecorded. */
      failClosed: z.boolean().default(false),
    })
    .prefault({}),
  /** Signed HTTP callbacks, kept in an outbox under <dataDir>/webhooks until the receiver answers 2xx. */
  webhooks: z
    .array(
      z.strictObject({
        url: z
          .url()
          .refine((u) => /^https?:\/\//.test(u), { message: 'must be an http:// or https:// URL' })
          // fetch (undici) drops user:password@ without a word: the receiver would never see it.
          .refine((u) => !hasUserinfo(u), { message: 'has user:password@ in it, which is never sent: remove it; the receiver authenticates Postern by the Postern-Signature header (webhooks[].secret), or by a token in the path or query' }),
        /** Webhook names or event codes, globs allowed: delivered, portal.opened, delivery.*, *. */
        events: z.array(z.string().min(1).superRefine((p, ctx) => {
          const problem = subscriptionProblem(p);
          if (problem) ctx.addIssue({ code: 'custom', message: problem });
        })).min(1),
        /** HMAC-SHA256 key of the Postern-Signature header; put it in ${env:...} or ${file:...}. */
        secret: z.string().min(16, { message: 'at least 16 characters (use ${env:NAME} or ${file:PATH})' }),
        // 0 aborted every POST at once, after the receiver had it: duplicates until given up.
        timeout: duration.default(10_000).refine((ms) => ms >= 1000, { message: 'must be at least 1s (a receiver that got the POST but had no time to answer gets it again and again)' }),
        retry: z
          .strictObject({
            // 0 posted to a failing receiver in a tight loop (hundreds a second, each logged).
            initialDelay: duration.default(5000).refine((ms) => ms >= 50, { message: 'must be at least 50ms (0 retries a failing receiver without pause)' }),
            maxDelay: duration.default(600_000),
            /** A delivery still failing this long after its event is given up (logged as webhook.gave-up). */
            giveUpAfter: longDuration.default(86_400_000),
          })
          .prefault({})
          .superRefine((r, ctx) => {
            if (r.giveUpAfter < r.initialDelay) ctx.addIssue({ code: 'custom', path: ['giveUpAfter'], message: 'must be at least retry.initialDelay (no retry would ever be made)' });
          }),
      }),
    )
    .default([]),
});

/** Whether a URL carries credentials before its host (user@ or user:password@). */
function hasUserinfo(url: string): boolean {
  try {
    const u = new URL(url);
    return u.username !== '' || u.password !== '';
  } catch {
    return false;
  }
}

export type PosternConfig = z.output<typeof configSchema>;
export type ClientRule = PosternConfig['smtp']['clients'][number];
export type AuthUser = PosternConfig['smtp']['auth']['users'][number];
export type RouteConfig = PosternConfig['delivery']['routes'][string];
