/** Benchmark knobs: flags (--messages=5000) or environment (BENCH_MESSAGES=5000). */
export type Mode = 'new' | 'reuse';

export interface BenchOptions {
  messages: number;
  largeMessages: number;
  sessions: number;
  rounds: number;
  /** Untimed messages sent through every setup, at every size, before the first round. */
  warmup: number;
  sizes: number[];
  modes: Mode[];
  postfix: boolean;
  large: boolean;
  /** postern-nojournal next to postern (issue 6). */
  journalOff: boolean;
  /** postern-pgp and postern-smime next to postern at one size (issue 5). */
  encrypt: boolean;
  encryptSize: number;
  encryptModes: Mode[];
  encryptMessages: number;
  /** postern-redis-x2: two instances on one Redis (issue 8). */
  redis: boolean;
  workers: string;
  out: string | undefined;
}

const HELP = `npm run bench [-- --flag=value ...]

  --messages=N      messages per run for 5 KB (default 5000; 100 KB runs use N*2/5)
  --sessions=N      concurrent client sessions (default 20)
  --rounds=N        interleaved rounds; the tables show medians (default 3)
  --warmup=N        untimed messages per setup and size before round 1 (default 2000;
                    a long-running gateway is warm: JIT-compiled, pools and caches filled)
  --sizes=5000,102400
  --modes=new,reuse new session per message, and sessions reused (-d)
  --postfix=0       skip the loopback Postfix relay even when Postfix is installed
  --journal-off=0   skip postern-nojournal (the same Postern with archive.enabled: false)
  --redis=0         skip postern-redis-x2 (two instances sharing a private redis-server)
  --encrypt=0       skip postern-pgp and postern-smime (their own table, next to postern)
  --encrypt-size=N  message size of the encryption table (default 51200)
  --encrypt-modes=reuse
                    modes of the encryption table (default reuse, as Microsoft 365 sends)
  --encrypt-messages=N
                    messages per encryption run (default 2000)
  --large=0         skip the ten 25 MB messages case
  --workers=auto    Postern's workers setting (postern-redis-x2: workers 1 per instance)
  --out=FILE        JSON results file (default: a temp file, printed at the end)
Every flag also reads from BENCH_<NAME> (e.g. BENCH_MESSAGES=2000, BENCH_JOURNAL_OFF=0).`;

export function parseOptions(argv: string[], env: NodeJS.ProcessEnv): BenchOptions | 'help' {
  const flags = new Map<string, string>();
  for (const arg of argv) {
    if (arg === '--help' || arg === '-h') return 'help';
    const m = /^--([a-z-]+)=(.*)$/.exec(arg);
    if (!m) throw new Error(`unknown argument ${arg}\n\n${HELP}`);
    flags.set(m[1] as string, m[2] as string);
  }
  const get = (name: string, fallback: string) => flags.get(name) ?? env[`BENCH_${name.toUpperCase().replace(/-/g, '_')}`] ?? fallback;
  const int = (name: string, fallback: number, min = 1) => {
    const v = Number(get(name, String(fallback)));
    if (!Number.isInteger(v) || v < min) throw new Error(`--${name} must be an integer of at least ${min}`);
    return v;
  };
  const on = (name: string) => get(name, '1') !== '0';
  const sizes = (name: string, fallback: string) => {
    const v = get(name, fallback).split(',').map(Number);
    if (v.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`--${name} must be sizes in bytes, comma-separated`);
    return v;
  };
  const modes = (name: string, fallback: string) => {
    const v = get(name, fallback).split(',');
    if (v.some((m) => m !== 'new' && m !== 'reuse')) throw new Error(`--${name} must be new, reuse or new,reuse`);
    return v as Mode[];
  };
  return {
    messages: int('messages', 5000),
    largeMessages: 10,
    sessions: int('sessions', 20),
    rounds: int('rounds', 3),
    warmup: int('warmup', 2000, 0),
    sizes: sizes('sizes', '5000,102400'),
    modes: modes('modes', 'new,reuse'),
    postfix: on('postfix'),
    large: on('large'),
    journalOff: on('journal-off'),
    encrypt: on('encrypt'),
    encryptSize: sizes('encrypt-size', '51200')[0] as number,
    encryptModes: modes('encrypt-modes', 'reuse'),
    encryptMessages: int('encrypt-messages', 2000),
    redis: on('redis'),
    workers: get('workers', 'auto'),
    out: flags.get('out') ?? env.BENCH_OUT,
  };
}

export { HELP };
