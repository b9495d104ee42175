// The envelope encryption moved to src/common so the archive uses the same code; the
// portal keeps importing it from here.
export { parseKeyMaterial, rewrap, seal, unseal, type MasterKey, type Sealed } from '../common/envelope-crypto.js';
