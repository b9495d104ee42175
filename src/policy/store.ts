import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from '../config/load.js';
import { EVENTS, type Logger } from '../events/logger.js';
import { policySchema, type Policy } from './schema.js';

/** Parses and validates a policy file's text; problems name the key, as config errors do. */
export function parsePolicyText(text: string, file: string): Policy {
  let raw: unknown;
  try {
    raw = parseYaml(text) ?? {};
  } catch (err) {
    throw new ConfigError(file, [`YAML syntax error: ${(err as Error).message.split('\n')[0]}`]);
  }
  const result = policySchema.safeParse(raw);
  if (!result.success) {
    throw new ConfigError(
      file,
      result.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(top level)'}: ${i.code === 'unrecognized_keys' ? `unknown key ${i.keys.join(', ')}` : i.message}`),
    );
  }
  return result.data;
}

export const DEFAULT_POLICY: Policy = policySchema.parse({});

/** The policy a running gateway decides with, and where it comes from (what the admin API explains with). */
export interface RunningPolicy {
  current(): Policy;
  /** The policy file (absolute), "inline (policy section of the config)" or "built-in default". */
  readonly source: string;
}

const INLINE_SOURCE = 'inline (policy section of the config)';

/**
 * The policy in force. Loaded at start-up (a broken file stops the start with the
 * problems named), then watched: a change is validated and applied; a broken change is
 * logged and the last good policy stays in force.
 */
export class PolicyStore implements RunningPolicy {
  private policy: Policy = DEFAULT_POLICY;
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Counts applied reloads (tests wait on it). */
  generation = 0;

  /**
   * file: the policy file (watched); without one, `inline` (the policy section of the
   * config, already validated with it) or the built-in default, fixed until a restart.
   */
  constructor(
    private readonly file: string | undefined,
    private readonly log: Logger,
    private readonly inline?: Record<string, unknown> | undefined,
  ) {}

  current(): Policy {
    return this.policy;
  }

  get source(): string {
    return this.file ?? (this.inline ? INLINE_SOURCE : 'built-in default');
  }

  async start(): Promise<void> {
    if (!this.file) {
      if (this.inline) this.policy = policySchema.parse(this.inline);
      this.log.info({ event: EVENTS.policyLoaded, source: this.source, rules: this.policy.rules.length }, `policy: ${this.source}`);
      return;
    }
    this.policy = parsePolicyText(await readFile(this.file, 'utf8'), this.file);
    this.log.info({ event: EVENTS.policyLoaded, file: this.file, rules: this.policy.rules.length }, 'policy loaded');
    // Editors replace files by rename: watch the directory, not the file.
    this.watcher = watch(dirname(this.file), (_type, name) => {
      if (name && name.toString() !== basename(this.file as string)) return;
      clearTimeout(this.timer);
      this.timer = setTimeout(() => void this.reload(), 150);
    });
    this.watcher.on('error', () => undefined);
  }

  async reload(): Promise<boolean> {
    if (!this.file) return false;
    try {
      this.policy = parsePolicyText(await readFile(this.file, 'utf8'), this.file);
      this.generation++;
      this.log.info({ event: EVENTS.policyLoaded, file: this.file, rules: this.policy.rules.length, generation: this.generation }, 'policy reloaded');
      return true;
    } catch (err) {
      const problems = err instanceof ConfigError ? err.problems : [(err as Error).message];
      this.log.error({ event: EVENTS.policyRejected, file: this.file, problems }, 'policy change rejected; the previous policy stays in force');
      return false;
    }
  }

  close(): void {
    clearTimeout(this.timer);
    this.watcher?.close();
  }
}
