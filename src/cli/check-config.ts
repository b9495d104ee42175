import { ConfigError, configPathFrom, loadConfigFile } from '../config/load.js';
import type { PosternConfig } from '../config/schema.js';
import { redactedUrl } from '../queue/redis/redacted-url.js';
import { configuredPolicy } from '../policy/configured.js';
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
    const listen = config.smtp.listen.map((l) => `${l.host}:${l.port}`).join(', ');
    process.stdout.write(
      `${file}: OK\n` +
        `  hostname: ${config.hostname}\n  dataDir: ${config.dataDir}\n  smtp.listen: ${listen}\n` +
        `  smtp.clients: ${config.smtp.clients.length} network rule(s), ${config.smtp.auth.users.length} SMTP AUTH user(s)\n` +
        `  delivery: ${Object.keys(config.delivery.routes).length} route(s), TLS default ${config.delivery.tls.default}\n` +
        queueLine(config) +
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

/** Which queue; for Redis, where (password hidden) and the lease settings every instance must share. */
function queueLine(config: PosternConfig): string {
  if (config.queue.backend !== 'redis') return `  queue: fs (under ${config.dataDir}/spool)\n`;
  const r = config.redis;
  const tls = r.tls?.ca ? `, TLS CA ${r.tls.ca}` : '';
  return `  queue: redis at ${redactedUrl(r.url)} (key prefix ${r.keyPrefix}${tls}), durability ${r.durability}, leaseTime ${r.leaseTime} ms, commandTimeout ${r.commandTimeout} ms\n`;
}
