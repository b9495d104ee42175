import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';

/** Clock ticks per second for /proc CPU figures (Linux: 100). */
const HZ = 100;

export function startProcess(cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
  // Own process group: the whole tree is measured and stopped together.
  return spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, ...opts });
}

export function killGroup(proc: ChildProcess | undefined, signal: NodeJS.Signals = 'SIGTERM'): void {
  if (!proc?.pid) return;
  try {
    process.kill(-proc.pid, signal);
  } catch {
    // gone
  }
}

/** Resolves once host:port answers with an SMTP greeting. */
export async function waitForSmtp(port: number, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ port, host: '127.0.0.1' });
      s.once('data', (d) => {
        s.end('QUIT\r\n');
        resolve(d.toString().startsWith('220'));
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing answered on 127.0.0.1:${port}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Whole-machine busy CPU seconds so far (everything but idle and iowait). */
export function machineBusySeconds(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] as string;
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = f;
  return (user + nice + system + irq + softirq + steal) / HZ;
}

/** CPU seconds (user + system) used so far by one process. */
export function processCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / HZ;
  } catch {
    return 0;
  }
}

/** CPU seconds of children this process has waited for (smtp-source runs, once reaped). */
export function reapedChildrenCpuSeconds(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[13]) + Number(f[14])) / HZ;
}

/** CPU seconds used so far by the live processes of some process groups (idle setups). */
export function groupsCpuSeconds(pgids: number[]): number {
  return pgids.flatMap(groupPids).reduce((sum, pid) => sum + processCpuSeconds(pid), 0);
}

/** A free loopback port (closed again before the server that wants it binds it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Pids in a process group (a relay and its workers). */
export function groupPids(pgid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(f[2]) === pgid) out.push(Number(name));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** Peak resident set (VmHWM) of each process in a group, in MB. */
export function peakRssMb(pgid: number): number[] {
  return statusMb(pgid, 'VmHWM');
}

/** Current resident set (VmRSS) of each process in a group, in MB. */
export function rssMb(pgid: number): number[] {
  return statusMb(pgid, 'VmRSS');
}

function statusMb(pgid: number, field: 'VmHWM' | 'VmRSS'): number[] {
  return groupPids(pgid).map((pid) => {
    try {
      const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      return m ? Number(m[1]) / 1024 : 0;
    } catch {
      return 0;
    }
  });
}

/**
 * Resets the peak resident set (VmHWM) of every process in the groups to its current
 * RSS (Linux ≥ 4.0: "5" to /proc/PID/clear_refs), so that the next peakRssMb reading
 * covers only what came after. False when any process could not be reset: its peak is
 * then the one since it started.
 */
export function resetPeakRss(pgids: number[]): boolean {
  let all = true;
  for (const pid of pgids.flatMap(groupPids)) {
    try {
      writeFileSync(`/proc/${pid}/clear_refs`, '5');
    } catch {
      all = false;
    }
  }
  return all;
}
