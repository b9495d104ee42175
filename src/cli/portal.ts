import { resolve } from 'node:path';
import { ConfigError, configPathFrom, loadConfigFile } from '../config/load.js';
import type { PosternConfig } from '../config/schema.js';
import { auditCliChange, cliActor } from '../events/audit-cli.js';
import { EVENTS } from '../events/logger.js';
import { loadMasterKeys } from '../portal/keys.js';
import { openPortalStore } from '../portal/open-store.js';
import type { PortalStore } from '../portal/store.js';
import { failCommand } from './config-or-exit.js';

async function openStore(configFile: string | undefined): Promise<{ store: PortalStore; config: PosternConfig } | undefined> {
  try {
    const config = loadConfigFile(configPathFrom(configFile));
    const dataDir = resolve(config.dataDir);
    const { keys } = await loadMasterKeys(config, dataDir);
    const store = await openPortalStore(config, dataDir, keys);
    return { store, config };
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exitCode = 2;
      return undefined;
    }
    throw err;
  }
}

/** postern portal revoke <id>: the message shows "withdrawn by the sender" from now on. */
export async function portalRevokeCommand(id: string, opts: { config?: string; by?: string }): Promise<void> {
  const opened = await openStore(opts.config);
  if (!opened) return;
  const m = await opened.store.get(id);
  if (!m) {
    process.stderr.write(`no portal message ${id}\n`);
    process.exitCode = 1;
    return;
  }
  if (!m.revoked) await opened.store.updateMessage(id, (current) => (current.revoked ? undefined : { ...current, revoked: { at: Date.now(), by: opts.by ?? process.env.USER ?? 'cli' } }));
  // Withdrawn here, it is in the audit trail as one withdrawn through the admin API is (not again when it already was).
  if (!m.revoked) await auditCliChange(opened.config, [{ event: EVENTS.portalRevoked, fields: { portalId: id, queueId: m.queueId, by: opts.by ?? process.env.USER ?? 'cli' } }]).catch((err: Error) => failCommand(err.message));
  process.stdout.write(
    `${JSON.stringify({ event: 'portal.revoked', portalId: id, queueId: m.queueId, by: opts.by ?? process.env.USER ?? 'cli', time: new Date().toISOString() })}\nwithdrawn: ${id} (queue id ${m.queueId}, ${m.recipients.length} recipient(s))\n`,
  );
}

/** postern portal list: ids, queue ids, dates and state (no content). */
export async function portalListCommand(opts: { config?: string }): Promise<void> {
  const opened = await openStore(opts.config);
  if (!opened) return;
  for (const m of (await opened.store.all()).sort((a, b) => a.createdAt - b.createdAt)) {
    process.stdout.write(`${m.id}  ${new Date(m.createdAt).toISOString()}  queue ${m.queueId}  ${m.kind}  to ${m.recipients.join(', ')}  ${m.revoked ? 'withdrawn' : `until ${new Date(m.expiresAt).toISOString()}`}\n`);
  }
}

/** postern portal rotate-key: re-wraps every data key with the first configured master key. */
export async function portalRotateCommand(opts: { config?: string }): Promise<void> {
  const opened = await openStore(opts.config);
  if (!opened) return;
  const n = await opened.store.rotate();
  await auditCliChange(opened.config, [{ event: EVENTS.portalKeyRotated, fields: { keyId: opened.store.currentKey.id, rewrapped: n, actor: cliActor() } }]).catch((err: Error) => failCommand(err.message));
  process.stdout.write(`re-wrapped ${n} message key(s) with master key ${opened.store.currentKey.id}\n`);
}
