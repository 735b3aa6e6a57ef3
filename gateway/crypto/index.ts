/** Crypto for the gateway: OpenPGP (the only place `openpgp` is imported) and at-rest sealing. */
export {
  GATEWAY_KEY_FILE,
  MAX_DECOMPRESSED_MESSAGE_SIZE,
  RECIPIENT_CHECK_TTL_MS,
  checkRecipientKey,
  decryptAndVerify,
  encryptAndSign,
  loadOrCreateGatewayKey,
  normaliseFingerprint,
  parseRecipientKey,
  readPublicKeyInfo,
  type GatewayKey,
  type PublicKeyInfo,
  type RecipientKey,
  type RecipientKeyProblem,
} from './openpgp.js';
export { MASTER_KEY_FILE, deriveKey, hmacId, loadOrCreateMasterSecret, seal, unseal } from './seal.js';
