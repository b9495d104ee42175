import { execFileSync, type ChildProcess } from 'node:child_process';
import { chownSync, chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { killGroup, startProcess, waitForSmtp } from './proc.js';
import type { Setup } from './setup.js';

const MASTER = '/usr/lib/postfix/sbin/master';
const MASTER_CF = '/etc/postfix/master.cf';

/** Whether a private Postfix relay can be run here (installed, and we are root). */
export function postfixAvailable(): boolean {
  return existsSync(MASTER) && existsSync(MASTER_CF) && process.getuid?.() === 0 && uid('postfix') !== undefined;
}

/**
 * A private loopback Postfix relay, for comparison: its own config, queue and data
 * directories under `base`, started by running master directly, so the system's Postfix
 * configuration (/etc/postfix/main.cf) is neither needed nor touched. Its queue keeps
 * Postfix's shipped durability (fsync before 250). Reverse lookups are off, as for Postern.
 */
export async function startPostfixRelay(base: string, port: number, sinkPort: number): Promise<Setup> {
  const etc = join(base, 'etc');
  const queue = join(base, 'queue');
  const data = join(base, 'data');
  const postfixUid = uid('postfix') as number;
  const postdropGid = gid('postdrop') ?? 0;
  for (const dir of [etc, queue, data]) mkdirSync(dir, { recursive: true });
  // Postfix's daemons run as the postfix user: every directory above the queue must be
  // searchable (mkdtemp makes its directory 0700).
  for (const dir of [dirname(base), base]) chmodSync(dir, 0o755);
  for (const d of ['active', 'bounce', 'corrupt', 'defer', 'deferred', 'flush', 'hold', 'incoming', 'private', 'saved', 'trace']) {
    mkdirSync(join(queue, d), { recursive: true });
    chownSync(join(queue, d), postfixUid, 0);
    chmodSync(join(queue, d), 0o700);
  }
  for (const [d, mode] of [['maildrop', 0o730], ['public', 0o710]] as const) {
    mkdirSync(join(queue, d), { recursive: true });
    chownSync(join(queue, d), postfixUid, postdropGid);
    chmodSync(join(queue, d), mode);
  }
  mkdirSync(join(queue, 'pid'), { recursive: true });
  chownSync(data, postfixUid, 0);
  writeFileSync(
    join(etc, 'main.cf'),
    [
      'compatibility_level = 3.6',
      `queue_directory = ${queue}`,
      `data_directory = ${data}`,
      'myhostname = bench-postfix.localdomain',
      'mydestination =',
      'inet_interfaces = loopback-only',
      'inet_protocols = ipv4',
      'mynetworks = 127.0.0.0/8',
      `relayhost = [127.0.0.1]:${sinkPort}`,
      'smtpd_relay_restrictions = permit_mynetworks, reject',
      'smtpd_peername_lookup = no',
      'default_process_limit = 200',
      'default_destination_concurrency_limit = 50',
      '',
    ].join('\n'),
  );
  // The shipped master.cf, with the SMTP service on our loopback port and no chroot
  // (a chroot would need its own copies of system files).
  const services = readFileSync(MASTER_CF, 'utf8')
    .split('\n')
    .map((line) => {
      if (/^smtp\s+inet\s/.test(line)) return `127.0.0.1:${port} inet n - n - - smtpd`;
      const f = line.split(/\s+/);
      if (/^[a-z0-9]/.test(line) && f.length >= 8) {
        f[4] = 'n';
        return f.join(' ');
      }
      return line;
    });
  writeFileSync(join(etc, 'master.cf'), services.join('\n'));
  const proc: ChildProcess = startProcess(MASTER, ['-c', etc, '-d']);
  await waitForSmtp(port);
  return {
    name: 'postfix',
    ports: [port],
    pgids: [proc.pid as number],
    async stop() {
      killGroup(proc);
      await new Promise((r) => setTimeout(r, 300));
      killGroup(proc, 'SIGKILL');
    },
  };
}

function uid(user: string): number | undefined {
  try {
    return Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim());
  } catch {
    return undefined;
  }
}

function gid(group: string): number | undefined {
  try {
    const line = execFileSync('getent', ['group', group], { encoding: 'utf8' }).trim();
    return Number(line.split(':')[2]);
  } catch {
    return undefined;
  }
}
