import type { PosternConfig } from '../config/schema.js';
import { withAdminChain, type ArchiveAdmin } from '../archive/admin.js';
import { AdminChainBroken, verifiedAdminState } from '../archive/admin-state.js';
import { addHold, releaseHold } from '../archive/hold-log.js';
import { checkHoldCriteria } from '../archive/holds.js';
import { purgeExpired, type PurgeReport } from '../archive/purge.js';
import { rotateKeys } from '../archive/rotate.js';
import { verifyArchive } from '../archive/verify.js';
import { ARCHIVE_EVENTS } from '../archive/events.js';
import { logPurgeDone, logPurgeRefused } from '../archive/purge-log.js';
import { auditCliChange, cliActor, withCliAudit } from '../events/audit-cli.js';
import { guarded, NOT_COMPLETE_EXIT, open, out, parseRange, type ConfigOption } from './archive-common.js';

/** postern archive verify: exit 1 and the first break when anything does not check out; 4 when there is nothing to check. */
export function archiveVerifyCommand(opts: ConfigOption & { quick?: boolean; json?: boolean }): Promise<void> {
  return guarded(async () => {
    const opened = await open(opts);
    if (!opened) return;
    const r = await verifyArchive(opened.archive.reader, { content: !opts.quick });
    // An empty or wrong directory must not read as an intact archive.
    const nothing = !r.found && !r.problems.length;
    if (opts.json) out(JSON.stringify(r, null, 2));
    else {
      for (const c of r.chains) out(`chain ${c.name}: ${c.records} record(s)${c.head ? `, head ${c.head.seq} ${c.head.hash}` : ''}`);
      out(`${r.items} item(s) checked${opts.quick ? ' (without decrypting content)' : ''}, ${r.destroyed} destroyed`);
      const first = r.problems[0];
      if (first) {
        out(`FAILED: chain ${first.chain}: ${first.problem}`);
        for (const p of r.problems.slice(1)) out(`also: chain ${p.chain}: ${p.problem}`);
      } else if (nothing) out(`NOTHING TO VERIFY: no item was journaled under ${opened.archive.layout.root} (a gateway that has not archived a message yet, or the wrong dataDir: check dataDir and archive.sinks)`);
      else out('OK: every chain is intact and every item matches its record');
    }
    if (r.problems.length) process.exitCode = 1;
    else if (nothing) process.exitCode = NOT_COMPLETE_EXIT;
  });
}

/** postern archive hold add: records a legal hold (reason and who) in the admin chain. */
export function archiveHoldAddCommand(opts: ConfigOption & { reason: string; by?: string; custodian?: string; since?: string; until?: string; keyword?: string }): Promise<void> {
  return guarded(async () => {
    const criteria = { custodian: opts.custodian, ...parseRange(opts.since, opts.until, { since: '--since', until: '--until' }), keyword: opts.keyword };
    checkHoldCriteria(criteria, '--');
    const opened = await open(opts);
    if (!opened) return;
    const h = await withCliAudit(opened.config, (log) => withAdminChain(opened.archive, (chain) => addHold(chain, criteria, opts.reason, cliActor(opts.by), log)));
    out(`${h.holdId}  added by ${h.actor} at ${h.at} (record ${h.seq})`);
  });
}

/** Exit code of a purge (or hold list) refused because the admin chain does not verify (1 is a partial purge). */
export const PURGE_REFUSED_EXIT = 3;

/** postern archive hold list: the holds of a verified admin chain; exit 3 when it does not verify (a list from a damaged chain could miss holds). */
export function archiveHoldListCommand(opts: ConfigOption & { all?: boolean }): Promise<void> {
  return guarded(async () => {
    const opened = await open(opts);
    if (!opened) return;
    let holds;
    try {
      ({ holds } = await verifiedAdminState(opened.archive.reader));
    } catch (err) {
      if (!(err instanceof AdminChainBroken)) throw err;
      process.stderr.write(`postern archive hold list: cannot list the holds: ${err.message}\n`);
      process.exitCode = PURGE_REFUSED_EXIT;
      return;
    }
    for (const h of holds.values()) {
      if (h.released && !opts.all) continue;
      const what = [h.custodian && `custodian ${h.custodian}`, h.since !== undefined && `since ${new Date(h.since).toISOString()}`, h.until !== undefined && `until ${new Date(h.until).toISOString()}`, h.keyword && `keyword ${JSON.stringify(h.keyword)}`].filter(Boolean).join(', ');
      out(`${h.id}  ${h.released ? `released ${h.released.at} by ${h.released.actor} (${h.released.reason})` : 'active'}  ${what}  added ${h.createdAt} by ${h.actor}: ${h.reason}`);
    }
  });
}

export function archiveHoldReleaseCommand(id: string, opts: ConfigOption & { reason: string; by?: string }): Promise<void> {
  return guarded(async () => {
    const opened = await open(opts);
    if (!opened) return;
    const { reader } = opened.archive;
    const r = await withCliAudit(opened.config, (log) => withAdminChain(reader, async (chain) => releaseHold(chain, await verifiedAdminState(reader), id, opts.reason, cliActor(opts.by), log)));
    out(`${id}  released by ${r.actor} at ${r.at} (record ${r.seq})`);
  });
}

/**
 * A purge under audit: each destruction (archive.destroyed, as it is recorded), then the
 * summary or the refusal, go to the audit trail's "cli" chain. A dry run changes
 * nothing and records nothing.
 */
async function auditedPurge(config: PosternConfig, { reader }: ArchiveAdmin, dryRun: boolean): Promise<PurgeReport> {
  if (dryRun) return purgeExpired(reader, config.archive.retention, undefined);
  const actor = cliActor();
  return withCliAudit(config, async (log) => {
    try {
      const r = await withAdminChain(reader, (chain) => purgeExpired(reader, config.archive.retention, chain, { log, actor }));
      logPurgeDone(log, r, actor);
      return r;
    } catch (err) {
      if (err instanceof AdminChainBroken) logPurgeRefused(log, err, actor);
      throw err;
    }
  });
}

/** postern archive purge [--dry-run]: crypto-shreds items past retention that no hold covers. */
export function archivePurgeCommand(opts: ConfigOption & { dryRun?: boolean }): Promise<void> {
  return guarded(async () => {
    const opened = await open(opts);
    if (!opened) return;
    let r;
    try {
      r = await auditedPurge(opened.config, opened.archive, opts.dryRun === true);
    } catch (err) {
      if (!(err instanceof AdminChainBroken)) throw err;
      process.stderr.write(`postern archive purge: REFUSED, nothing was destroyed: ${err.message}\n`);
      process.exitCode = PURGE_REFUSED_EXIT;
      return;
    }
    for (const p of r.purged) out(`${opts.dryRun ? 'would destroy' : 'destroyed'} ${p.id}  received ${new Date(p.receivedAt).toISOString()}  ${p.rule} (${p.days} days)`);
    for (const h of r.held) out(`kept ${h.id}: under legal hold ${h.holds.join(', ')}`);
    for (const f of r.failed) out(`kept ${f.id}: could not be checked (${f.error})`);
    for (const b of r.brokenChains) out(`kept every item of chain ${b.chain}: it does not verify (${b.problem}); run postern archive verify`);
    out(`${r.examined} old enough to check, ${r.purged.length} ${opts.dryRun ? 'would be destroyed' : 'destroyed'}, ${r.held.length} held, ${r.failed.length} unreadable${r.brokenChains.length ? `, ${r.brokenChains.length} chain(s) skipped` : ''}${r.finished ? `, ${r.finished} interrupted destruction(s) finished` : ''}`);
    if (r.failed.length || r.brokenChains.length) process.exitCode = 1;
  });
}

/** postern archive rotate-key: re-wraps every item key with the first archive.masterKeys entry. */
export function archiveRotateCommand(opts: ConfigOption & { by?: string }): Promise<void> {
  return guarded(async () => {
    const opened = await open(opts);
    if (!opened) return;
    const { reader } = opened.archive;
    const actor = cliActor(opts.by);
    const r = await withAdminChain(reader, (chain) => rotateKeys(reader, chain, actor));
    await auditCliChange(opened.config, [{ event: ARCHIVE_EVENTS.keyRotated, fields: { keyId: r.keyId, rewrapped: r.rewrapped, skipped: r.skipped, actor } }]);
    out(`re-wrapped ${r.rewrapped} item key(s) with master key ${r.keyId}`);
    if (r.headsSkipped) out(`${r.headsSkipped} journal chain head(s) could not be signed again with ${r.keyId} (in use by a gateway not restarted with the new key first, or not intact: run postern archive verify); do that before removing the old key`);
    if (r.skipped) out(`${r.skipped} item(s) in segments a running gateway is still writing were left as they are: run rotate-key again tomorrow or after a restart, before removing the old key`);
  });
}
