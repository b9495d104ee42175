import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterEach } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import type { PosternConfig } from '../../src/config/schema.js';
import { createLogger } from '../../src/events/logger.js';
import { PortalDelivery } from '../../src/portal/deliver.js';
import { FsPortalStore } from '../../src/portal/fs-store.js';
import type { PortalStore } from '../../src/portal/store.js';
import { createPortalServer, type PortalServerOptions } from '../../src/portal/web/server.js';
import { SESSION_COOKIE, SessionStore } from '../../src/portal/web/sessions.js';
import type { IncomingEnvelope, QueueBackend } from '../../src/queue/backend.js';
import type { Envelope } from '../../src/types.js';
import { testConfigInput } from './gateway.js';
import { createTestCa } from './pki.js';

export interface Queued {
  envelope: Envelope;
  raw: Buffer;
}

export interface PortalApp {
  app: FastifyInstance;
  config: PosternConfig;
  dataDir: string;
  /** The store the app was given (a test may wrap the file store). */
  store: PortalStore;
  files: FsPortalStore;
  /** The portal method's delivery step (stores a message, sends its notices) on the same store. */
  delivery: PortalDelivery;
  /** What the app queued (replies, receipts), in order. */
  queued: Queued[];
  logs: Record<string, unknown>[];
  /** A cookie header for a session logged in as `identity`. */
  loggedIn(identity: string): Promise<string>;
  close(): Promise<void>;
}

const tls = createTestCa().issue(['postern.test']);

/** A queue that only keeps what is handed to it: the web app's tests look at that. */
function keepingQueue(queued: Queued[]): QueueBackend {
  return {
    async receive(envelope: IncomingEnvelope) {
      const chunks: Buffer[] = [];
      return {
        id: envelope.id,
        write: async (chunk: Buffer) => void chunks.push(chunk),
        commit: async () => {
          const raw = Buffer.concat(chunks);
          const done: Envelope = { ...envelope, size: raw.length };
          queued.push({ envelope: done, raw });
          return done;
        },
        abort: async () => undefined,
      };
    },
  } as unknown as QueueBackend;
}

/**
 * The recipients' web app alone, on a file store in a fresh data directory, answered
 * through fastify's inject (no socket).
 */
export async function portalApp(
  overrides: Record<string, unknown> = {},
  opts: { wrap?: (files: FsPortalStore) => PortalStore; server?: Partial<PortalServerOptions> } = {},
): Promise<PortalApp> {
  const dataDir = mkdtempSync(join(tmpdir(), 'postern-portal-app-'));
  const config = validateConfig(testConfigInput(dataDir, overrides));
  const files = new FsPortalStore(join(dataDir, 'portal'), [{ id: 'k1', key: randomBytes(32) }]);
  await files.open();
  const store = opts.wrap ? opts.wrap(files) : files;
  const queued: Queued[] = [];
  const logs: Record<string, unknown>[] = [];
  const log = createLogger('debug', { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
  const queue = keepingQueue(queued);
  const delivery = new PortalDelivery(config, store, queue, log);
  const app = await createPortalServer({ config, store, delivery, queue, log, tls, ...opts.server });
  const sessions = new SessionStore(files, config.portal.sessions.idle, config.portal.sessions.absolute);
  return {
    app,
    config,
    dataDir,
    store,
    files,
    delivery,
    queued,
    logs,
    async loggedIn(identity) {
      return `${SESSION_COOKIE}=${(await sessions.create(identity)).id}`;
    },
    close: () => app.close(),
  };
}

/** portalApp for the tests of a file: every app a test starts is closed after it. */
export function portalApps(): (...args: Parameters<typeof portalApp>) => Promise<PortalApp> {
  const started: PortalApp[] = [];
  afterEach(async () => {
    for (const app of started.splice(0)) await app.close();
  });
  return async (...args) => {
    const app = await portalApp(...args);
    started.push(app);
    return app;
  };
}
