import { resolve } from 'node:path';
import { dataDirProblems } from '../config/data-dir.js';
import type { PosternConfig } from '../config/schema.js';
import { createLogger } from '../events/logger.js';
import { loadSmimeTrust, readCertificateFiles } from '../keys/start.js';
import { loadLogo } from '../portal/web/logo.js';
import { createProtector } from '../protect/protector.js';
import { loadDkimKeys } from '../sign/dkim-keys.js';
import { readCertificatePair, type CertificateSettings } from '../tls/certificate-pair.js';

/** What was opened, for check-config's report. */
export interface StartupSummary {
  /** Settings of the certificate pairs that were read and matched. */
  certificates: string[];
  dkimKeys: number;
}

/**
 * Opens what `postern start` opens from the config before it takes mail, with the same
 * code, and nothing more: no file is written, no port bound, no connection made. Every
 * problem is collected (not only the first) and each names its key. check-config runs
 * it to say whether start would work; start runs it first, so that a config that fails
 * here fails before anything has started, with the same words. What a running gateway
 * opens later (the policy file, Redis) is checked where it is opened.
 */
export async function startupProblems(config: PosternConfig): Promise<{ problems: string[]; summary: StartupSummary }> {
  const problems = dataDirProblems(resolve(config.dataDir));
  const fail = (err: Error) => void problems.push(err.message);
  const pairs = certificatePairs(config);
  for (const p of pairs) await readCertificatePair(p.settings, p.cert, p.key).catch(fail);
  if (config.portal.enabled) await loadLogo(config.portal.organisation.logoFile).catch(fail);
  // Its warnings (a CA certificate left out) are the gateway's to log; only what stops the start counts here.
  await loadSmimeTrust(config, createLogger('silent')).catch(fail);
  await readCertificateFiles(config.delivery.tls.trust, 'delivery.tls.trust').catch(fail);
  // Organisation identities, escrow keys, DKIM keys (protect/protector.ts, sign/dkim-keys.ts).
  await createProtector(config).catch(fail);
  const dkim = await loadDkimKeys(config).catch(fail);
  return { problems, summary: { certificates: pairs.map((p) => p.settings.cert.replace(/\.cert$/, '')), dkimKeys: dkim?.length ?? 0 } };
}

/** The certificate pairs configured for the listeners that are on (those not set use the SMTP or the development certificate). */
function certificatePairs(config: PosternConfig): { settings: CertificateSettings; cert: string; key: string }[] {
  const pair = (prefix: string, t: { cert?: string | undefined; key?: string | undefined }) =>
    t.cert && t.key ? [{ settings: { cert: `${prefix}.cert`, key: `${prefix}.key` }, cert: t.cert, key: t.key }] : [];
  return [
    ...pair('smtp.tls', config.smtp.tls),
    ...(config.portal.enabled ? pair('portal.tls', config.portal.tls) : []),
    ...(config.admin.enabled && config.admin.tls.enabled ? pair('admin.tls', config.admin.tls) : []),
  ];
}
