import { resolve } from 'node:path';
import { ConfigError, configPathFrom, loadConfigFile } from '../config/load.js';
import { verifyAudit } from '../events/audit-verify.js';

/** The data directory of the config; a bad config is reported as check-config does (exit 2). */
export function dataDirOf(configFile: string | undefined): string | undefined {
  try {
    return resolve(loadConfigFile(configPathFrom(configFile)).dataDir);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${err.message}\n`);
    process.exitCode = 2;
    return undefined;
  }
}

/**
 * postern audit verify: exit 0 when every chain is intact, 1 at the first broken link,
 * 4 when there is no chain at all (as archive verify): a cron check run on the wrong
 * dataDir, or with audit.enabled off, must not pass as "intact".
 */
export async function auditVerifyCommand(opts: { config?: string; json?: boolean }): Promise<void> {
  const dataDir = dataDirOf(opts.config);
  if (!dataDir) return;
  const r = await verifyAudit(dataDir);
  if (opts.json) process.stdout.write(`${JSON.stringify(r)}\n`);
  else if (r.ok && !r.chains) process.stdout.write(`no audit trail under ${resolve(dataDir, 'audit')} (is audit.enabled off, or has the gateway not run with this dataDir?)\n`);
  else if (r.ok) process.stdout.write(`audit trail intact: ${r.records} record(s) in ${r.chains} chain(s) under ${resolve(dataDir, 'audit')}\n`);
  else {
    const b = r.firstBreak;
    process.stdout.write(`audit trail BROKEN at ${resolve(dataDir, b?.file ?? 'audit')}:${b?.line ?? 0}: ${b?.reason ?? 'unknown'}\n(${r.records} record(s) verified before it)\n`);
  }
  if (!r.ok) process.exitCode = 1;
  else if (!r.chains) process.exitCode = 4;
}
