/** Benchmark knobs: flags (--messages=5000) or environment (BENCH_MESSAGES=5000). */
export interface BenchOptions {
  messages: number;
  largeMessages: number;
  sessions: number;
  rounds: number;
  /** Untimed messages sent through every setup, at every size, before the first round. */
  warmup: number;
  sizes: number[];
  modes: ('new' | 'reuse')[];
  postfix: boolean;
  large: boolean;
  workers: string;
  out: string | undefined;
}

const HELP = `npm run bench [-- --flag=value ...]

  --messages=N      messages per run for 5 KB (default 5000; 100 KB runs use N*2/5)
  --sessions=N      concurrent client sessions (default 20)
  --rounds=N        interleaved rounds; the table shows medians (default 3)
  --warmup=N        untimed messages per setup and size before round 1 (default 2000;
                    a long-running gateway is warm: JIT-compiled, pools and caches filled)
  --sizes=5000,102400
  --modes=new,reuse new session per message, and sessions reused (-d)
  --postfix=0       skip the loopback Postfix relay even when Postfix is installed
  --large=0         skip the ten 25 MB messages case
  --workers=auto    Postern's workers setting
  --out=FILE        JSON results file (default: a temp file, printed at the end)
Every flag also reads from BENCH_<NAME> (e.g. BENCH_MESSAGES=2000).`;

export function parseOptions(argv: string[], env: NodeJS.ProcessEnv): BenchOptions | 'help' {
  const flags = new Map<string, string>();
  for (const arg of argv) {
    if (arg === '--help' || arg === '-h') return 'help';
    const m = /^--([a-z-]+)=(.*)$/.exec(arg);
    if (!m) throw new Error(`unknown argument ${arg}\n\n${HELP}`);
    flags.set(m[1] as string, m[2] as string);
  }
  const get = (name: string, fallback: string) => flags.get(name) ?? env[`BENCH_${name.toUpperCase()}`] ?? fallback;
  const int = (name: string, fallback: number, min = 1) => {
    const v = Number(get(name, String(fallback)));
    if (!Number.isInteger(v) || v < min) throw new Error(`--${name} must be an integer of at least ${min}`);
    return v;
  };
  return {
    messages: int('messages', 5000),
    largeMessages: 10,
    sessions: int('sessions', 20),
    rounds: int('rounds', 3),
    warmup: int('warmup', 2000, 0),
    sizes: get('sizes', '5000,102400').split(',').map(Number),
    modes: get('modes', 'new,reuse').split(',') as ('new' | 'reuse')[],
    postfix: get('postfix', '1') !== '0',
    large: get('large', '1') !== '0',
    workers: get('workers', 'auto'),
    out: flags.get('out') ?? env.BENCH_OUT,
  };
}

export { HELP };
