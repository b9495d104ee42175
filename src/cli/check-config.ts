import { ConfigError, configPathFrom, loadConfigFile } from '../config/load.js';
import type { PosternConfig } from '../config/schema.js';
import { redactedUrl } from '../queue/redis/redacted-url.js';
import { configuredPolicy } from '../policy/configured.js';
import { createProtector } from '../protect/protector.js';
import { loadDkimKeys } from '../sign/dkim-keys.js';
import { policySummary } from './policy.js';

export async function checkConfigCommand(explicit: string | undefined): Promise<void> {
  const file = configPathFrom(explicit);
  try {
    const config = loadConfigFile(file);
    // The policy the config names is checked too: a gateway would not start on a broken one.
    const { policy, source } = await configuredPolicy(config.policy, file).catch((err: Error) => {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new ConfigError(file, [`policy.file: cannot read ${(err as NodeJS.ErrnoException).path ?? 'the policy file'}`]);
      throw err;
    });
    // Keys a gateway opens at start: one that does not open fails here, named, not at start.
    const keysLine = await keyMaterialLine(config, file);
    const listen = config.smtp.listen.map((l) => `${l.host}:${l.port}`).join(', ');
    process.stdout.write(
      `${file}: OK\n` +
        `  hostname: ${config.hostname}\n  dataDir: ${config.dataDir}\n  smtp.listen: ${listen}\n` +
        `  smtp.clients: ${config.smtp.clients.length} network rule(s), ${config.smtp.auth.users.length} SMTP AUTH user(s)\n` +
        `  delivery: ${Object.keys(config.delivery.routes).length} route(s), TLS default ${config.delivery.tls.default}\n` +
        queueLine(config) +
        keysLine +
        `  ${policySummary(policy, source)}\n`,
    );
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exitCode = 2;
      return;
    }
    throw err;
  }
}

/**
 * Opens what the gateway opens at start — organisation identities, escrow keys, DKIM
 * keys — with the same checks (protect/protector.ts, sign/dkim-keys.ts); each problem
 * names its key.
 */
async function keyMaterialLine(config: PosternConfig, file: string): Promise<string> {
  const problems: string[] = [];
  const fail = (err: Error) => void problems.push(err.message);
  await createProtector(config).catch(fail);
  const dkim = await loadDkimKeys(config).catch(fail);
  if (problems.length) throw new ConfigError(file, problems);
  const escrow = [config.protect.pgp.escrowKey && 'pgp', config.protect.smime.escrowCert && 'smime'].filter(Boolean).join(', ') || 'none';
  return `  keys: ${Object.keys(config.identities).length} signing identity domain(s), escrow ${escrow}, ${dkim?.length ?? 0} DKIM key(s): all open\n`;
}

/** Which queue; for Redis, where (password hidden) and the lease settings every instance must share. */
function queueLine(config: PosternConfig): string {
  if (config.queue.backend !== 'redis') return `  queue: fs (under ${config.dataDir}/spool)\n`;
  const r = config.redis;
  const tls = r.tls?.ca ? `, TLS CA ${r.tls.ca}` : '';
  return `  queue: redis at ${redactedUrl(r.url)} (key prefix ${r.keyPrefix}${tls}), durability ${r.durability}, leaseTime ${r.leaseTime} ms, commandTimeout ${r.commandTimeout} ms\n`;
}
