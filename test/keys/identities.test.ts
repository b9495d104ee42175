import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { loadIdentities } from '../../src/keys/identities.js';
import { buildCert, threeTier } from './smime-pki.js';

const email = 'dr@client.test';
const withCert = (smimeCert: string, smimeKey: string) => validateConfig({ hostname: 'postern.test', identities: { 'client.test': { smimeCert, smimeKey } } });
const load = (smimeCert: string, smimeKey: string) => loadIdentities(withCert(smimeCert, smimeKey));
const RULE = 'identities.client.test.smimeCert: the certificates after the first must be its chain, each issued by the next: ';

describe('the chain an S/MIME signing identity is sent with', () => {
  const { root, intermediate, leaf } = threeTier(email);

  it('its intermediates (and the root, if given) in order are accepted and kept to send with each signature', async () => {
    for (const chain of [[intermediate], [intermediate, root]]) {
      const { identityFor } = await load(leaf.cert + chain.map((c) => c.cert).join(''), leaf.key);
      expect(identityFor('client.test')?.smime?.chain.map((c) => c.subject)).toEqual(chain.map((c) => `CN=${c.name}`));
    }
  });

  it('an unrelated certificate, a root that did not issue it, or the right ones in the wrong order stop the start, naming the setting', async () => {
    const unrelated = buildCert({ name: 'Unrelated CA', ca: true });
    await expect(load(leaf.cert + unrelated.cert, leaf.key)).rejects.toThrow(`${RULE}the signature on the certificate does not verify with intermediate "CN=Unrelated CA"`);
    // The root alone, without the intermediate that issued the certificate.
    await expect(load(leaf.cert + root.cert, leaf.key)).rejects.toThrow(`${RULE}the signature on the certificate does not verify with intermediate "CN=Test Root CA"`);
    await expect(load(leaf.cert + root.cert + intermediate.cert, leaf.key)).rejects.toThrow(`${RULE}the signature on the certificate does not verify with intermediate "CN=Test Root CA"`);
    // An end-entity certificate cannot stand in for an issuing CA, even if its key signed the next.
    const notCa = buildCert({ name: 'someone@client.test', email: 'someone@client.test', issuer: root });
    const underNotCa = buildCert({ name: email, email, issuer: notCa });
    await expect(load(underNotCa.cert + notCa.cert, underNotCa.key)).rejects.toThrow(`${RULE}intermediate "CN=someone@client.test" is not a CA certificate (basic constraints)`);
  });

  it('an intermediate signed with SHA-1 is refused, whether its issuer is given or not; a path length that forbids the depth too', async () => {
    const sha1Intermediate = buildCert({ name: 'Old Issuing CA', ca: true, issuer: root, hash: 'sha1' });
    const under = buildCert({ name: email, email, issuer: sha1Intermediate });
    const refusal = `${RULE}intermediate "CN=Old Issuing CA" is signed with SHA-1 (sha1WithRSAEncryption): refused (collisions can forge such signatures)`;
    await expect(load(under.cert + sha1Intermediate.cert + root.cert, under.key)).rejects.toThrow(refusal);
    await expect(load(under.cert + sha1Intermediate.cert, under.key)).rejects.toThrow(refusal);
    const second = buildCert({ name: 'Second Issuing CA', ca: true, issuer: intermediate });
    const deep = buildCert({ name: email, email, issuer: second });
    await expect(load(deep.cert + second.cert + intermediate.cert, deep.key)).rejects.toThrow(`${RULE}intermediate "CN=Test Issuing CA 1" allows 0 intermediate(s) below it`);
  });
});
