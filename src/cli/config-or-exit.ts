import { ConfigError, configPathFrom, loadConfigFile } from '../config/load.js';
import type { PosternConfig } from '../config/schema.js';

/** The config for a command, or undefined after printing the problems (exit code 2). */
export function configOrExit(file: string | undefined): PosternConfig | undefined {
  try {
    return loadConfigFile(configPathFrom(file));
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${err.message}\n`);
    process.exitCode = 2;
    return undefined;
  }
}

/** Ends a command with a message on stderr and exit code 1. */
export function failCommand(message: string): void {
  process.stderr.write(`${message}\n`);
  process.exitCode = 1;
}
