import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { testConfigInput, writeConfigFile } from '../helpers/gateway.js';

/**
 * Where the config and the data go must be said, not guessed. An empty POSTERN_CONFIG (a
 * unit file's `Environment=POSTERN_CONFIG=` with the value lost) or `dataDir: ""` meant
 * the working directory; `postern policy ...` with POSTERN_CONFIG naming a missing file
 * went on with the built-in defaults and explained decisions with another policy.
 * Commands run in a directory of their own, with no config/postern.yaml in it.
 */
describe('the config file and dataDir must be named when given', () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-config-source-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const cwd = mkdtempSync(join(dir, 'cwd-'));
  const cli = (args: string[], env: NodeJS.ProcessEnv = {}) => runCli(args, { POSTERN_CONFIG: undefined, ...env }, cwd);

  it.each(['start', 'check-config', 'policy check', 'portal list'])('postern %s with POSTERN_CONFIG set but empty: exit 2 naming the variable', async (command) => {
    const r = await cli(command.split(' '), { POSTERN_CONFIG: '' });
    expect(r.stderr).toContain('POSTERN_CONFIG is set but empty: give the config file\'s path');
    expect(r.code).toBe(2);
  });

  it('--config "": exit 2 naming the option', async () => {
    const r = await cli(['check-config', '--config', '']);
    expect(r.stderr).toContain('--config is set but empty');
    expect(r.code).toBe(2);
  });

  it('dataDir: "": check-config and start exit 2 naming dataDir, and write nothing into the working directory', async () => {
    const file = writeConfigFile(mkdtempSync(join(dir, 'empty-datadir-')), testConfigInput(''));
    for (const command of ['check-config', 'start']) {
      const r = await cli([command, '--config', file]);
      expect(r.stderr).toContain('dataDir: empty, which would mean the working directory');
      expect(r.code).toBe(2);
    }
    expect(existsSync(join(cwd, 'spool'))).toBe(false);
  });

  it.each(['policy check', 'policy explain --from a@client.test --to b@dest.test'])('postern %s with POSTERN_CONFIG naming a missing file: exit 2 naming the file, as start does', async (command) => {
    const missing = join(dir, 'nonexistent', 'postern.yaml');
    const start = await cli(['start'], { POSTERN_CONFIG: missing });
    const r = await cli(command.split(' '), { POSTERN_CONFIG: missing });
    expect(r.stderr).toContain(`invalid configuration in ${missing}:\n  - cannot read the config file: ENOENT`);
    expect(r.stderr).toBe(start.stderr);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
  });

  it('postern policy check with no config named and none in the working directory: the built-in defaults, as before', async () => {
    const r = await cli(['policy', 'check']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^policy OK: /);
    expect(r.code).toBe(0);
  });
});
