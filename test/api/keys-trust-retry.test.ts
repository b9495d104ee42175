import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { AdminSources } from '../../src/api/sources.js';
import { createAdminServer } from '../../src/api/server.js';
import { validateConfig } from '../../src/config/load.js';
import { silent } from '../archive/helpers.js';
import { testConfigInput } from '../helpers/gateway.js';
import { createTestCa } from '../helpers/pki.js';
import { makeCrl } from '../keys/crl-fixture.js';
import { adminConfig, KEYS } from './admin-helpers.js';

/**
 * POST /api/v1/keys reads the S/MIME trust anchors and CRLs at its first use. A CRL that
 * could not be read then (being replaced, say) used to be remembered as a failure: every
 * later import answered 500 until the gateway was restarted.
 */
describe('S/MIME trust of the keys API', () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-keys-trust-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('a CRL unreadable at one import is read again at the next', async () => {
    const ca = createTestCa('Postern S/MIME Test CA');
    const crl = join(dir, 'ca.crl');
    writeFileSync(crl, 'half of a CRL being copied in\n');
    const dataDir = join(dir, 'data');
    const config = validateConfig(testConfigInput(dataDir, { admin: await adminConfig(), keys: { smimeTrust: [ca.caFile], smimeCrls: [crl] } }));
    // Only the keys routes are called here: they read no gateway source.
    const sources = { policy: undefined } as unknown as AdminSources;
    const app = await createAdminServer({ config, dataDir, log: silent, sources });
    const importCert = async () => {
      const r = await app.inject({ method: 'POST', url: '/api/v1/keys', headers: { 'x-api-key': KEYS.op }, payload: { material: ca.issueSmime('patient@dest.test').cert } });
      return { status: r.statusCode, body: r.json() as { message?: string; results?: { kind: string; stored: boolean }[] } };
    };
    try {
      const broken = await importCert();
      expect(broken.status).toBe(500);
      expect(broken.body.message).toMatch(/^keys\.smimeCrls: /);

      writeFileSync(crl, makeCrl(ca, []));
      const fixed = await importCert();
      expect(fixed, 'the import after the CRL was fixed').toMatchObject({ status: 200, body: { results: [{ kind: 'smime', stored: true }] } });
    } finally {
      await app.close();
    }
  });
});
