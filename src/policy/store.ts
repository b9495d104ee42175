import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from '../config/load.js';
import { EVENTS, type Logger } from '../events/logger.js';
import { policySchema, type Policy } from './schema.js';
import { readSettled } from './settled-file.js';

/**
 * A policy file with no document in it (empty, blank lines, comments only). Not the
 * built-in default: a file truncated by a failed render, `> policy.yaml` or an editor
 * mid-save would otherwise replace a strict policy with it, silently. `{}` says "the
 * built-in default" on purpose.
 */
export class EmptyPolicyError extends ConfigError {
  constructor(file: string) {
    super(file, ['policy file is empty (nothing but blank lines or comments): write {} to use the built-in default policy']);
  }
}

/** Parses and validates a policy file's text; problems name the key, as config errors do. */
export function parsePolicyText(text: string, file: string): Policy {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new ConfigError(file, [`YAML syntax error: ${(err as Error).message.split('\n')[0]}`]);
  }
  if (raw === null || raw === undefined) throw new EmptyPolicyError(file);
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
  private closed = false;
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
      this.scheduleReload();
    });
    this.watcher.on('error', () => undefined);
  }

  /**
   * Reads the changed file and applies it when it is valid. A file that changed while it
   * was read (half written) is read again shortly; one without a document (emptied) is
   * refused like any broken change. Saving by writing a temporary file and renaming it
   * over the policy file never shows either state (README).
   */
  async reload(): Promise<boolean> {
    if (!this.file) return false;
    try {
      const text = await readSettled(this.file);
      if (text === undefined) {
        this.log.debug({ file: this.file }, 'policy file changed while it was read; reading it again once it settles');
        this.scheduleReload();
        return false;
      }
      this.policy = parsePolicyText(text, this.file);
      this.generation++;
      this.log.info({ event: EVENTS.policyLoaded, file: this.file, rules: this.policy.rules.length, generation: this.generation }, 'policy reloaded');
      return true;
    } catch (err) {
      const problems = err instanceof EmptyPolicyError ? ['policy file is empty; previous policy stays in force'] : err instanceof ConfigError ? err.problems : [(err as Error).message];
      this.log.error({ event: EVENTS.policyRejected, file: this.file, problems }, 'policy change rejected; the previous policy stays in force');
      return false;
    }
  }

  private scheduleReload(): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.reload(), 150);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.watcher?.close();
  }
}
