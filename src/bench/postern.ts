import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { configYaml, policyYaml, type PosternSpec } from './postern-config.js';
import { killGroup, startProcess, waitForSmtp } from './proc.js';
import type { Setup } from './setup.js';

const ENTRY = fileURLToPath(new URL('../cli/postern.cjs', import.meta.url));

/**
 * Postern as the bench runs it: the built CLI with its durable spool, relaying to the
 * sink in clear (the sink has no TLS), logging warnings only. The shipped inspection
 * rules (tag, PHI, consumer domains) stay on, so inspection is paid for.
 */
export async function startPostern(spec: PosternSpec): Promise<Setup> {
  mkdirSync(spec.dir, { recursive: true });
  const policy = join(spec.dir, 'policy.yaml');
  const config = join(spec.dir, 'postern.yaml');
  writeFileSync(policy, policyYaml(spec.methods ?? ['smime', 'pgp', 'tls', 'portal']));
  writeFileSync(config, configYaml(spec, policy));
  const proc = startProcess(process.execPath, [ENTRY, 'start', '--config', config], { stdio: ['ignore', 'ignore', 'inherit'] });
  // A config Postern refuses makes it exit at once: say so instead of waiting for SMTP.
  const exited = new Promise<never>((_, reject) => proc.once('exit', (code) => reject(new Error(`${spec.name} exited with ${code} before answering SMTP (config: ${config})`))));
  exited.catch(() => undefined); // reported through the race below only
  try {
    await Promise.race([waitForSmtp(spec.port), exited]);
  } catch (err) {
    killGroup(proc, 'SIGKILL');
    throw err;
  }
  // Every worker must be listening before the load starts.
  await new Promise((r) => setTimeout(r, 500));
  return {
    name: spec.name,
    ports: [spec.port],
    pgids: [proc.pid as number],
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      killGroup(proc);
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          killGroup(proc, 'SIGKILL');
          resolve();
        }, 10_000);
        proc.once('exit', () => {
          clearTimeout(t);
          resolve();
        });
      });
    },
  };
}
