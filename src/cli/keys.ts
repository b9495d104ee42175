import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { PosternConfig } from '../config/schema.js';
import { auditCliChange, cliActor } from '../events/audit-cli.js';
import { createLogger, EVENTS } from '../events/logger.js';
import { DeliveryDns } from '../deliver/dns.js';
import { importKeys } from '../keys/import.js';
import { inspectPgpKey } from '../keys/pgp-key.js';
import { inspectSmimeCert } from '../keys/smime-cert.js';
import { startKeys, type KeyParts } from '../keys/start.js';
import type { KeyRecord } from '../keys/store.js';
import { configOrExit, failCommand } from './config-or-exit.js';

interface Opened {
  config: PosternConfig;
  keys: KeyParts;
  /** What the lookup logged (skipped keys, failed sources), for `show --discover`. */
  lines: Record<string, unknown>[];
}

async function open(configFile: string | undefined): Promise<Opened | undefined> {
  const config = configOrExit(configFile);
  if (!config) return undefined;
  const lines: Record<string, unknown>[] = [];
  const log = createLogger('info', { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) });
  const dns = new DeliveryDns(config.delivery.dns.servers, config.delivery.dns.timeout);
  try {
    return { config, keys: await startKeys(config, resolve(config.dataDir), (host) => dns.addresses(host), log), lines };
  } catch (err) {
    failCommand((err as Error).message);
    return undefined;
  }
}

/**
 * Opens the key store the config names (files, or the shared Redis with queue.backend:
 * redis, as the gateway does), runs `use`, and closes the store again: an open Redis
 * connection would keep the command from exiting.
 */
async function withKeys(configFile: string | undefined, use: (opened: Opened) => Promise<void>): Promise<void> {
  const opened = await open(configFile);
  if (!opened) return;
  try {
    await use(opened);
  } finally {
    await opened.keys.store.close();
  }
}

const day = (ms: number | undefined) => (ms ? new Date(ms).toISOString().slice(0, 10) : 'never');

/** postern keys import FILE: stores the OpenPGP keys and S/MIME certificates in FILE. */
export async function keysImportCommand(file: string, opts: { config?: string; address?: string; domain?: string }): Promise<void> {
  await withKeys(opts.config, async (opened) => {
    const text = await readFile(file, 'utf8').catch((err: Error) => failCommand(`cannot read ${file}: ${err.message}`));
    if (text === undefined) return;
    const { store, smimeTrust } = opened.keys;
    const results = await importKeys(store, text, { address: opts.address, domain: opts.domain, smimeTrust });
    if (!results.length) return failCommand(`${file} holds no OpenPGP key block or PEM certificate`);
    for (const r of results) {
      if (r.refused) process.stderr.write(`refused ${r.id}: ${r.refused}\n`);
      else process.stdout.write(`stored ${r.id} for ${r.addresses.join(', ')} (expires ${day(r.expiresAt)})\n`);
    }
    const stored = results.filter((r) => !r.refused);
    if (stored.length) await auditCliChange(opened.config, [{ event: EVENTS.keysImported, fields: { actor: cliActor(), keyIds: stored.map((r) => r.id) } }]).catch((err: Error) => failCommand(err.message));
    if (results.some((r) => r.refused)) process.exitCode = 1;
  });
}

/** Whether a stored key can be used now, and why not. */
async function status(r: KeyRecord, keys: KeyParts): Promise<{ usable: boolean; why: string; expiresAt?: number | undefined }> {
  if (r.kind === 'pgp') {
    const info = await inspectPgpKey(r.material);
    return { usable: !info.unusable, why: info.unusable ?? 'usable', expiresAt: info.expiresAt };
  }
  const info = inspectSmimeCert(r.material, keys.smimeTrust);
  return { usable: !info.unusable, why: info.unusable ?? 'usable', expiresAt: info.notAfter };
}

/** postern keys list: every stored key with the addresses it serves and whether it is usable. */
export async function keysListCommand(opts: { config?: string; json?: boolean }): Promise<void> {
  await withKeys(opts.config, async (opened) => {
    const rows = [];
    for (const r of await opened.keys.store.all()) rows.push({ id: r.id, kind: r.kind, addresses: r.addresses, source: r.source, from: r.from, addedAt: new Date(r.addedAt).toISOString(), ...(await status(r, opened.keys)) });
    if (opts.json) return void process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    if (!rows.length) return void process.stdout.write('no keys stored\n');
    for (const r of rows) process.stdout.write(`${r.id}  ${r.addresses.join(',')}  ${r.from ? `${r.source} (${r.from})` : r.source} ${r.addedAt.slice(0, 10)}  expires ${day(r.expiresAt)}  ${r.why}\n`);
  });
}

/** postern keys show ADDRESS: the stored keys for an address (and its domain), and which one is used. */
export async function keysShowCommand(address: string, opts: { config?: string; discover?: boolean }): Promise<void> {
  await withKeys(opts.config, async (opened) => {
    const { store, lookup } = opened.keys;
    for (const kind of ['pgp', 'smime'] as const) {
      for (const r of await store.forAddress(kind, address)) {
        const s = await status(r, opened.keys);
        process.stdout.write(`${r.id}  for ${r.addresses.join(',')}  ${r.source}  expires ${day(s.expiresAt)}  ${s.why}\n`);
      }
    }
    const pgp = opts.discover ? await lookup.pgp(address) : await lookup.pgpStored(address);
    const smime = await lookup.smime(address);
    for (const l of opened.lines.filter((x) => x.event === 'keys.source-failed' || x.event === 'keys.skipped')) {
      process.stdout.write(`  ${String(l.source ?? l.kind)}: ${String(l.reason ?? (l.tried as string[] | undefined)?.join('; ') ?? '')}\n`);
    }
    const used = (k: typeof smime | typeof pgp, what: string) => (k ? `${what}: ${k.info.fingerprint} (${k.source}, ${k.from})` : `${what}: none usable`);
    process.stdout.write(`${used(pgp, opts.discover ? 'OpenPGP (store and discovery)' : 'OpenPGP (store)')}\n${used(smime, 'S/MIME')}\n`);
  });
}

/** postern keys remove ID: ID is a record id (pgp:FPR, smime:FPR) or a fingerprint. */
export async function keysRemoveCommand(id: string, opts: { config?: string }): Promise<void> {
  await withKeys(opts.config, async (opened) => {
    if (await opened.keys.store.remove(id)) {
      process.stdout.write(`removed ${id}\n`);
      await auditCliChange(opened.config, [{ event: EVENTS.keysRemoved, fields: { actor: cliActor(), keyId: id } }]).catch((err: Error) => failCommand(err.message));
    } else failCommand(`no stored key ${id} (see postern keys list)`);
  });
}
