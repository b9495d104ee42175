import { join } from 'node:path';
import { stringify } from 'yaml';

export type Method = 'smime' | 'pgp' | 'tls' | 'portal';

/** What one Postern setup changes from the plain relay; everything else is shared. */
export interface PosternSpec {
  name: string;
  /** Config, policy and data directory of this instance. */
  dir: string;
  port: number;
  sinkPort: number;
  workers: string;
  /** The policy's defaults.methods; the plain relay's is the shipped order. */
  methods?: Method[];
  /** archive.enabled (default true, as shipped). */
  journal?: boolean;
  /** keys.smimeTrust: CA files the recipients' certificates chain to. */
  smimeTrust?: string[];
  /** Extra delivery routes before "*" (the encryption check's capture server). */
  routes?: Record<string, string>;
  /** queue.backend: redis, with the master keys every instance of the pair shares. */
  redis?: { url: string; keyPrefix: string; portalKey: string; archiveKey: string };
}

export const dataDirOf = (dir: string) => join(dir, 'data');

/** The policy file: only its defaults differ between setups; the shipped rules stay on. */
export function policyYaml(methods: Method[]): string {
  // tls: may, because the sink offers no TLS; onNoMethod: defer, so a message no listed
  // method can protect is never delivered (an encrypting setup cannot fall back to clear).
  return `defaults: { methods: [${methods.join(', ')}], tls: may, onNoMethod: defer }\n`;
}

/** postern.yaml for a setup, with its policy file at `policyFile`. */
export function configYaml(spec: PosternSpec, policyFile: string): string {
  const masterKeys = (key: string) => [{ id: 'bench1', key }];
  const config: Record<string, unknown> = {
    hostname: 'bench.postern.test',
    dataDir: dataDirOf(spec.dir),
    workers: /^\d+$/.test(spec.workers) ? Number(spec.workers) : 'auto',
    log: { level: 'warn' },
    smtp: {
      listen: [`127.0.0.1:${spec.port}`],
      clients: [{ cidr: '127.0.0.0/8' }],
      limits: { maxMessageSize: '60MB', maxConnectionsPerIp: 1000 },
    },
    delivery: {
      routes: { ...spec.routes, '*': `127.0.0.1:${spec.sinkPort}` },
      tls: { default: 'none' },
      pool: { maxConnectionsPerHost: 20, maxMessagesPerConnection: 1000 },
    },
    // Recipients' keys come from the local store only: discovery would ask WKD, off
    // this machine, for every new recipient address.
    keys: { discovery: ['store'], ...(spec.smimeTrust ? { smimeTrust: spec.smimeTrust } : {}) },
    policy: { file: policyFile },
    // Free ports for the portal and the admin listener: several setups run at once, and
    // the shipped 8443/9025 may be taken on a developer's machine. Loopback only.
    portal: { listen: '127.0.0.1:0', ...(spec.redis ? { masterKeys: masterKeys(spec.redis.portalKey) } : {}) },
    admin: { listen: '127.0.0.1:0' },
    archive: { enabled: spec.journal ?? true, ...(spec.redis ? { masterKeys: masterKeys(spec.redis.archiveKey) } : {}) },
    ...(spec.redis ? { queue: { backend: 'redis' }, redis: { url: spec.redis.url, keyPrefix: spec.redis.keyPrefix } } : {}),
  };
  return stringify(config);
}
