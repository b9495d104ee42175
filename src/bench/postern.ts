import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Relay } from './postfix.js';
import { killGroup, startProcess, waitForSmtp } from './proc.js';

const ENTRY = fileURLToPath(new URL('../cli/postern.cjs', import.meta.url));

/**
 * Postern as the bench runs it: the built CLI with its durable fs spool, relaying
 * everything to the sink in clear (the sink has no TLS), logging warnings only.
 */
export async function startPostern(base: string, port: number, sinkPort: number, workers: string): Promise<Relay> {
  mkdirSync(base, { recursive: true });
  const config = join(base, 'postern.yaml');
  // The shipped rules (tag, PHI, consumer domains) stay on, so inspection is paid for;
  // only the TLS floor is lowered, because the sink offers no TLS.
  const policy = join(base, 'policy.yaml');
  writeFileSync(policy, ['defaults: { methods: [smime, pgp, tls, portal], tls: may, onNoMethod: defer }', ''].join('\n'));
  writeFileSync(
    config,
    [
      'hostname: bench.postern.test',
      `dataDir: ${join(base, 'data')}`,
      `workers: ${/^\d+$/.test(workers) ? workers : 'auto'}`,
      'log: { level: warn }',
      'smtp:',
      `  listen: ["127.0.0.1:${port}"]`,
      '  clients: [{ cidr: 127.0.0.0/8 }]',
      '  limits: { maxMessageSize: 60MB, maxConnectionsPerIp: 1000 }',
      'delivery:',
      `  routes: { "*": "127.0.0.1:${sinkPort}" }`,
      '  tls: { default: none }',
      '  pool: { maxConnectionsPerHost: 20, maxMessagesPerConnection: 1000 }',
      // Recipients' keys come from the local store only: discovery would ask WKD, off
      // this machine, for every new recipient address.
      'keys: { discovery: [store] }',
      'policy:',
      `  file: ${policy}`,
      '',
    ].join('\n'),
  );
  const proc = startProcess(process.execPath, [ENTRY, 'start', '--config', config], { stdio: ['ignore', 'ignore', 'inherit'] });
  await waitForSmtp(port);
  // Every worker must be listening before the load starts.
  await new Promise((r) => setTimeout(r, 500));
  return {
    name: 'postern',
    port,
    pgid: proc.pid as number,
    async stop() {
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
