import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { closedPort } from '../helpers/closed-port.js';
import { testConfigInput, writeConfigFile } from '../helpers/gateway.js';

/** A line of a Node stack trace, or the source excerpt Node prints above an uncaught error. */
const STACK = /^\s+at |node:internal|\^\n/m;

/** Without the debug switch, whatever the environment running the tests has. */
const cli = (args: string[], env: NodeJS.ProcessEnv = {}) => runCli(args, { POSTERN_DEBUG: '', ...env });

describe('postern CLI: an error a command did not handle', () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-cli-errors-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** A config file in its own directory under dir. */
  const configFile = (name: string, overrides: Record<string, unknown> = {}) => {
    const caseDir = mkdtempSync(join(dir, `${name}-`));
    return writeConfigFile(caseDir, testConfigInput(join(caseDir, 'data'), overrides));
  };
  const explain = (file: string) => ['policy', 'explain', '--from', 'a@client.test', '--to', 'b@dest.test', '--file', file, '--config', configFile('explain')];

  it.each([
    ['policy explain --file of a missing file', () => explain('/nonexistent/message.eml'), /^postern: ENOENT: no such file or directory, open '\/nonexistent\/message\.eml'\n$/],
    ['policy explain --file of a directory', () => explain(dir), /^postern: EISDIR: illegal operation on a directory, read\n$/],
    ['policy check of a directory', () => ['policy', 'check', dir, '--config', configFile('check')], /^postern: EISDIR: illegal operation on a directory, read\n$/],
    ['dkim keygen --out into a missing directory', () => ['dkim', 'keygen', '--domain', 'example.test', '--selector', 's1', '--algorithm', 'ed25519-sha256', '--out', '/nonexistent/dir/k.pem'], /^postern: ENOENT: no such file or directory, open '\/nonexistent\/dir\/k\.pem'\n$/],
  ])('%s: one line "postern: <message>" on stderr, no stack trace, exit code 1', async (_name, args, line) => {
    const r = await cli(args());
    expect(r.stderr).not.toMatch(STACK);
    expect(r.stderr).toMatch(line);
    expect(r.code).toBe(1);
  });

  it('portal list with a dataDir that is a file: one line, exit code 1', async () => {
    const file = join(dir, 'not-a-directory');
    writeFileSync(file, 'x');
    const r = await cli(['portal', 'list', '--config', configFile('portal-file', { dataDir: file })]);
    expect(r.stderr).not.toMatch(STACK);
    expect(r.stderr).toMatch(/^postern: ENOTDIR: not a directory, mkdir '.*not-a-directory\/portal'\n$/);
    expect(r.code).toBe(1);
  });

  it('portal list with Redis unreachable: one line without the password, exit code 1 (not left reconnecting)', async () => {
    const port = await closedPort();
    const keys = (id: string) => ({ masterKeys: [{ id, key: Buffer.alloc(32, id).toString('base64') }] });
    const config = configFile('portal-redis', { queue: { backend: 'redis' }, redis: { url: `redis://:cli-secret-pw@127.0.0.1:${port}/0` }, portal: keys('p1'), archive: keys('a1') });
    const r = await cli(['portal', 'list', '--config', config]);
    expect(r.stderr).not.toMatch(STACK);
    expect(r.stderr).toMatch(new RegExp(`^postern: cannot reach Redis at redis://:\\*\\*\\*@127\\.0\\.0\\.1:${port}/0: .*ECONNREFUSED.*\\n$`));
    expect(r.stderr).not.toContain('cli-secret-pw');
    expect(r.code).toBe(1);
  });

  it('POSTERN_DEBUG=1 adds the stack trace after the line', async () => {
    const r = await cli(['policy', 'check', dir, '--config', configFile('debug')], { POSTERN_DEBUG: '1' });
    expect(r.stderr).toMatch(/^postern: EISDIR: illegal operation on a directory, read\n/);
    expect(r.stderr).toMatch(/^\s+at /m);
    expect(r.code).toBe(1);
  });

  it('an invalid config keeps its own report and exit code 2', async () => {
    const caseDir = mkdtempSync(join(dir, 'bad-'));
    const file = join(caseDir, 'postern.yaml');
    writeFileSync(file, 'hostname: "not a hostname!"\n');
    const r = await cli(['portal', 'list', '--config', file]);
    expect(r.stderr).toMatch(/hostname: must be the gateway's DNS name/);
    expect(r.stderr).not.toMatch(/^postern: /m);
    expect(r.code).toBe(2);
  });
});
