import { rmSync } from 'node:fs';
import { afterAll } from 'vitest';
import { openJournal } from '../../src/archive/journal.js';
import { TestMx } from '../helpers/mx-server.js';
import { createTestCa } from '../helpers/pki.js';
import { archiveConfig, silent, tempDir } from './helpers.js';

/**
 * Archive mailboxes for smtp-sink tests: a CA the sink trusts, servers on 127.0.0.1 and
 * journals pointing at them; everything is stopped and removed after the file.
 */
export function smtpArchive(caName: string) {
  const ca = createTestCa(caName);
  const serverCert = ca.issue(['archive.test']);
  const dirs: string[] = [];
  const servers: TestMx[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
  });
  return {
    serverCert,
    async mx(opts: ConstructorParameters<typeof TestMx>[0]): Promise<TestMx> {
      const s = await new TestMx(opts).start();
      servers.push(s);
      return s;
    },
    /** A port nothing listens on (a server started and stopped). */
    async closedPort(): Promise<number> {
      const probe = await new TestMx({}).start();
      const port = probe.port;
      await probe.stop();
      return port;
    },
    /** A journal with the fs sink and an smtp sink to 127.0.0.1:port; `sink` and `archive` add settings. */
    journalTo(port: number, sink: Record<string, unknown> = {}, archive: Record<string, unknown> = {}) {
      const dataDir = tempDir();
      dirs.push(dataDir);
      const smtp = { type: 'smtp', server: `127.0.0.1:${port}`, to: 'journal@archive.test', servername: 'archive.test', ca: [ca.caFile], timeout: '5s', ...sink };
      const { config } = archiveConfig(dataDir, { sinks: [{ type: 'fs' }, smtp], ...archive });
      return openJournal(config, dataDir, silent);
    },
  };
}
