import { listenAddresses } from '../config/listen-addresses.js';
import { ConfigError, configPathFrom, loadConfigFile } from '../config/load.js';
import type { PosternConfig } from '../config/schema.js';
import { redactedUrl } from '../queue/redis/redacted-url.js';
import { configuredPolicy } from '../policy/configured.js';
import { listenProblems } from './listen-probe.js';
import { policySummary } from './policy.js';
import { startupProblems, type StartupSummary } from './startup-checks.js';

export async function checkConfigCommand(explicit: string | undefined): Promise<void> {
  try {
    const file = configPathFrom(explicit);
    const config = loadConfigFile(file);
    // The policy the config names is checked too: a gateway would not start on a broken one.
    const { policy, source } = await configuredPolicy(config.policy, file).catch((err: Error) => {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new ConfigError(file, [`policy.file: cannot read ${(err as NodeJS.ErrnoException).path ?? 'the policy file'}`]);
      throw err;
    });
    // What start opens (dataDir, certificates and keys, the logo, trust files), with start's
    // own code: one that does not open fails here, named, not at start.
    const { problems, summary } = await startupProblems(config);
    problems.push(...(await foreignAddresses(config)));
    if (problems.length) throw new ConfigError(file, problems);
    const listen = config.smtp.listen.map((l) => `${l.host}:${l.port}`).join(', ');
    process.stdout.write(
      `${file}: OK\n` +
        `  hostname: ${config.hostname}\n  dataDir: ${config.dataDir} (writable)\n  smtp.listen: ${listen}\n` +
        `  smtp.clients: ${config.smtp.clients.length} network rule(s), ${config.smtp.auth.users.length} SMTP AUTH user(s)\n` +
        `  delivery: ${Object.keys(config.delivery.routes).length} route(s), TLS default ${config.delivery.tls.default}\n` +
        queueLine(config) +
        tlsLine(summary) +
        keysLine(config, summary) +
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
 * Listener addresses no interface of this machine has. A port in use is not a problem
 * here (the running gateway holds it while its next config is checked), nor a port
 * that needs privileges check-config may not have; start names both.
 */
async function foreignAddresses(config: PosternConfig): Promise<string[]> {
  const problems = await listenProblems(listenAddresses(config));
  return problems.filter((e) => (e.cause as NodeJS.ErrnoException | undefined)?.code === 'EADDRNOTAVAIL').map((e) => e.message);
}

function tlsLine(summary: StartupSummary): string {
  if (!summary.certificates.length) return '  tls: no certificate configured (start makes a development one under dataDir)\n';
  return `  tls: ${summary.certificates.join(', ')}: each key matches its certificate\n`;
}

function keysLine(config: PosternConfig, summary: StartupSummary): string {
  const escrow = [config.protect.pgp.escrowKey && 'pgp', config.protect.smime.escrowCert && 'smime'].filter(Boolean).join(', ') || 'none';
  return `  keys: ${Object.keys(config.identities).length} signing identity domain(s), escrow ${escrow}, ${summary.dkimKeys} DKIM key(s): all open\n`;
}

/** Which queue; for Redis, where (password hidden) and the lease settings every instance must share. */
function queueLine(config: PosternConfig): string {
  if (config.queue.backend !== 'redis') return `  queue: fs (under ${config.dataDir}/spool)\n`;
  const r = config.redis;
  const tls = r.tls?.ca ? `, TLS CA ${r.tls.ca}` : '';
  return `  queue: redis at ${redactedUrl(r.url)} (key prefix ${r.keyPrefix}${tls}), durability ${r.durability}, leaseTime ${r.leaseTime} ms, commandTimeout ${r.commandTimeout} ms\n`;
}
