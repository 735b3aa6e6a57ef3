/**
 * Demonstration material that production refuses whatever the files say: the fingerprints of the
 * published test keys (their secret halves are in the repository's test/fixtures/keys) and the hashes
 * of the sample tokens (policies/clients.sample.yaml, whose plaintext is published in the README).
 * A production gateway pinning one of these keys would encrypt to, or accept signatures from, anyone
 * who has read the repository; a sample token lets anyone in. Deleting `sample: true` from a copied
 * file must not bring them back, so the check is by value, not by marker.
 *
 * The lists are copied here (production code never reads test/ at run time): regenerate them from
 * test/fixtures/keys/fingerprints.json and policies/clients.sample.yaml when the test keys or sample
 * tokens are remade; test/unit/demo-material.test.ts fails until they agree.
 */
import { GatewayError, type ErrorDetail } from '../errors/index.js';

/** Test key id → primary key fingerprint (test/fixtures/keys/fingerprints.json). */
export const DEMO_KEY_FINGERPRINTS: Readonly<Record<string, string>> = {
  'childrens-services': 'EFE1249713A2DEECE45A77CB7073680850B5AEB6',
  'council-housing': '1162733E2E89CF983AE1FD8E1CD45476B17A1220',
  'dvla': '05BB0270C582DF200507F79C6C9E6F226FF02BAA',
  'dwp-benefits': '616B4E7149C307D10060A4B2767E8A799B5F22A3',
  'expired': '3020A69580630101BB92D7ECFA09A72459C58DED',
  'governance': 'FAE7D1C2D0EF086D6EE4C13BE4569436D6622B9D',
  'hmrc': 'DE055C77F6F634EB6664F3AE6A2F57D7618AD5A5',
  'immigration-enforcement': 'D2F2DA0A441438C245A55E42E2162C15E18F032F',
  'intruder': 'DEBC682E29F824DD0908A26B62510F1C7AAD4920',
  'revoked': 'E55DFACD4E8D8375E211A7B6B9DFDC1B6249ADE6',
  'riverside-homes': '44C6A7EE919A4AB765BA993F868E70855CBB1EA1',
  'warwickshire': 'BDF2229E20AFB2F052F3EFBB0505C6D99CF668D8',
  'west-midlands': '3592B5342928DE3E0933D8B142CA952FED11EB04',
};

/** Sample client id → token hash (policies/clients.sample.yaml). */
export const SAMPLE_TOKEN_HASHES: Readonly<Record<string, string>> = {
  'west-midlands-rocu': 'sha256:511bc95977d746a1f3890b3adc862dd8e62c6b5120fbf74ff1c93994494639dd',
  'governance': 'sha256:61dc29e2083ff768a5d7cccd13cc779bc46784b9da931adf16471fae95a63b80',
  'council-housing': 'sha256:6f1517af7c54278edf9e31b6260879ef787db5aad5c5f17495c2fc1bb8a0b7f7',
  'dwp-benefits': 'sha256:38877245293e1af054c68183c017efbab8e32253f2b221c26fea10187326f6b7',
  'dvla': 'sha256:2be2f062d7778e3d89d75215dcccd5b155a4e79fec94626e0af366c51a533dd9',
  'hmrc': 'sha256:0f3160b93a5754e7906fa52558d7581d7b897136b9394bc4c0ece1defd169e39',
  'immigration-enforcement': 'sha256:a1a0e51054ebf6c8daa9a48a385f08d1140199f0b821d6753ffb70425de98f46',
  'childrens-services': 'sha256:df5805ca857380d1dedb8027d11dafe00c85d1fe36491c75b279993a95306282',
  'riverside-homes': 'sha256:68670af549033f18224faa13659b90046233d83ebe7375becd8b458d725e029f',
};

const demoKeyByFingerprint = new Map(Object.entries(DEMO_KEY_FINGERPRINTS).map(([id, fp]) => [fp, id]));
const sampleClientByHash = new Map(Object.entries(SAMPLE_TOKEN_HASHES).map(([id, h]) => [h, id]));

interface Pinned {
  file: string;
  key: { fingerprint: string };
}

/** The parts of a policy set that pin keys (policy/types.ts PolicySet, structurally). */
export interface PinningSet {
  partners: ReadonlyMap<string, { file: string; partner: { key: { fingerprint: string } } }>;
  sources: ReadonlyMap<string, { file: string; source: { key: { fingerprint: string } } }>;
  peerPolicies?: ReadonlyMap<string, { file: string; peer: { key: { fingerprint: string } } }>;
}

/** Every key the set pins that is a published test key, one problem per file. */
export function demoKeysIn(set: PinningSet): ErrorDetail[] {
  const pins: Array<Pinned & { where: string }> = [
    ...[...set.partners.values()].map((p) => ({ file: p.file, key: p.partner.key, where: 'partner.key.fingerprint' })),
    ...[...set.sources.values()].map((s) => ({ file: s.file, key: s.source.key, where: 'source.key.fingerprint' })),
    ...[...(set.peerPolicies?.values() ?? [])].map((p) => ({ file: p.file, key: p.peer.key, where: 'peer.key.fingerprint' })),
  ];
  const problems: ErrorDetail[] = [];
  for (const pin of pins) {
    const id = demoKeyByFingerprint.get(pin.key.fingerprint.replace(/\s|:/g, '').toUpperCase());
    if (id) problems.push({ path: `${pin.file}: ${pin.where}`, message: `${pin.key.fingerprint} is the published test key "${id}" (its secret half is public): refused in production` });
  }
  return problems;
}

/** Throws `config_invalid` naming every pinned test key (production start-up and policy reloads); else returns the set. */
export function refuseDemoKeys<T extends PinningSet>(set: T): T {
  const problems = demoKeysIn(set);
  if (!problems.length) return set;
  const named = problems.map((p) => `${p.path} (${p.message})`).join('; ');
  throw new GatewayError('config_invalid', `The policy set pins ${problems.length} published test key(s): ${named}`, problems);
}

/** Throws `config_invalid` naming every client of `file` that holds a sample token. */
export function refuseSampleTokens(file: string, clients: ReadonlyArray<{ id: string; tokens: readonly string[] }>): void {
  const problems: ErrorDetail[] = [];
  clients.forEach((c, i) => {
    for (const t of c.tokens) {
      const sample = sampleClientByHash.get(t.toLowerCase());
      if (sample) problems.push({ path: `clients[${i}].tokens`, message: `client ${JSON.stringify(c.id)} holds the published sample token of "${sample}": refused in production` });
    }
  });
  if (!problems.length) return;
  throw new GatewayError('config_invalid', `${file}: ${problems.map((p) => p.message).join('; ')}`, problems);
}
