/**
 * Loading the policy directory: the only I/O of the policy module (through files.ts and schema-check.ts).
 *
 *   <dir>/gateway.yaml          gateway-wide constraints (neverShare, alwaysFilter, nonCompetentFilter)
 *   <dir>/partners/<id>.yaml    a partner, its agreement, its base allowlist and its rules
 *   <dir>/sources/<id>.yaml     a police force that pushes dossiers
 *   <dir>/peers/<id>.yaml       other forces' gateways (optional; loaded raw, hashed into the revision)
 *   <dir>/keys/*.asc            public keys, named by the files above
 *
 * Every file is checked against schemas/policy.schema.json (ajv strict) and then semantically: every
 * path exists in the dossier schema, operations fit the field, `keep` only on leaves, rule facts are
 * known, neverShare paths are never granted, ids match file names, key files stay inside the
 * directory. EVERY problem across all files is collected and thrown as one
 * `GatewayError('policy_invalid', 'N problems in the policy set', details)`.
 *
 * This file walks the directory and assembles the set; the pieces live beside it: files.ts (reading
 * YAML and key files), schema-check.ts (the schema check and the problem list), field-checks.ts and
 * condition-checks.ts (the semantic checks), schema-index.ts (the dossier schema as policy paths),
 * revision.ts (the revision hash). Policy tests are loaded by governance/policy-tests.ts.
 */
import path from 'node:path';
import { realpath } from 'node:fs/promises';
import { GatewayError, type ErrorDetail } from '../errors/index.js';
import { checkAgreementDates, checkGateway, checkOperations, checkRules } from './field-checks.js';
import { checkPeerKeepsProtections } from './peer-checks.js';
import { checkRuleConditions } from './condition-checks.js';
import { fileId, listYaml, parseYaml, readKey, readText, type Loaded } from './files.js';
import { checkMatch } from './match.js';
import { checkNonCompetentFilter } from './non-competent.js';
import { fileDigests, revisionOf } from './revision.js';
import { loadItemTypes } from './schema-index.js';
import { getValidators, loc, Problems, schemaProblems } from './schema-check.js';
import type {
  GatewayRules,
  KeyRef,
  PartnerPolicy,
  PeerFile,
  PeerHitsPolicy,
  PeerPolicy,
  PolicySet,
  SourceConfig,
  Statutory,
  Condition,
} from './types.js';

// ---- the whole set -----------------------------------------------------------------------------

export async function loadPolicySet(dir: string, now: Date = new Date()): Promise<PolicySet> {
  const { set, problems } = await collectPolicySet(dir, now);
  if (problems.length > 0) {
    const n = problems.length;
    throw new GatewayError('policy_invalid', `${n} problem${n === 1 ? '' : 's'} in the policy set`, problems);
  }
  return set;
}

/**
 * Everything that loads, and every problem: for the linter, which checks what it can of a set that
 * does not load. NEVER serve the set of a result with problems (loadPolicySet refuses it).
 */
export async function collectPolicySet(dir: string, now: Date = new Date()): Promise<{ set: PolicySet; problems: ErrorDetail[] }> {
  const v = await getValidators();
  loadItemTypes();
  const root = path.resolve(dir);
  const problems = new Problems();
  const files: Loaded[] = [];

  let realRoot: string;
  try {
    realRoot = await realpath(root);
  } catch {
    throw new GatewayError('policy_invalid', '1 problem in the policy set', [{ path: dir, message: 'the policy directory does not exist' }]);
  }

  // gateway.yaml
  let gateway: GatewayRules = { neverShare: [], alwaysFilter: {} };
  const gwText = await readText(root, 'gateway.yaml', files, problems);
  if (gwText !== undefined) {
    const doc = parseYaml('gateway.yaml', gwText, problems);
    if (doc !== undefined) {
      if (!v.gateway(doc)) schemaProblems('gateway.yaml', v.gateway.errors, problems);
      else {
        gateway = checkGateway('gateway.yaml', doc as Record<string, unknown>, problems);
        gateway.nonCompetentFilter = checkNonCompetentFilter('gateway.yaml', doc as Record<string, unknown>, problems);
      }
    }
  }
  const neverShare = new Set(gateway.neverShare);

  // partners/
  const partners = new Map<string, PartnerPolicy>();
  const partnerFiles = await listYaml(root, 'partners');
  if (partnerFiles === undefined) problems.add('partners/', '', 'the partners directory is missing');
  const ids = new Set<string>();
  for (const name of partnerFiles ?? []) {
    const rel = `partners/${name}`;
    const id = fileId(name);
    if (ids.has(id)) problems.add(rel, '', `a second file for partner ${id}`);
    ids.add(id);
    const text = await readText(root, rel, files, problems);
    if (text === undefined) continue;
    const doc = parseYaml(rel, text, problems);
    if (doc === undefined) continue;
    if (!v.partner(doc)) {
      schemaProblems(rel, v.partner.errors, problems);
      continue;
    }
    const d = doc as {
      partner: { id: string; name: string; kind: string; key: { file: string; fingerprint: string }; checks: string[]; competentAuthority?: boolean };
      agreement: PartnerPolicy['agreement'];
      fields: Record<string, unknown>;
      rules?: unknown[];
      match?: unknown[];
      statutory?: Statutory;
    };
    if (d.partner.id !== id) problems.add(rel, 'partner.id', `must equal the file name (${JSON.stringify(id)})`);
    checkAgreementDates(rel, d.agreement, problems);
    const fields = checkOperations(d.fields, { file: rel, where: (p) => loc('fields', p), problems, neverShare, kind: 'fields' });
    const rules = checkRules(rel, d.rules ?? [], neverShare, problems);
    const match = checkMatch(rel, d.match, d.agreement, neverShare, problems);
    if (d.statutory) for (const m of checkRuleConditions(d.statutory.conditions as Condition, 'subject')) problems.add(rel, 'statutory.conditions', m.message);
    const key: KeyRef = { file: d.partner.key.file, fingerprint: d.partner.key.fingerprint };
    const armored = await readKey(root, realRoot, rel, 'partner.key.file', key.file, files, problems);
    if (armored !== undefined) key.armored = armored;
    partners.set(d.partner.id, {
      file: rel,
      partner: { id: d.partner.id, name: d.partner.name, kind: d.partner.kind, key, checks: [...d.partner.checks], competentAuthority: d.partner.competentAuthority === true },
      agreement: structuredClone(d.agreement),
      fields,
      rules,
      ...(match ? { match } : {}),
      ...(d.statutory ? { statutory: structuredClone(d.statutory) } : {}),
    });
  }

  // sources/
  const sources = new Map<string, SourceConfig>();
  const sourceFiles = await listYaml(root, 'sources');
  if (sourceFiles === undefined) problems.add('sources/', '', 'the sources directory is missing');
  const sourceIds = new Set<string>();
  for (const name of sourceFiles ?? []) {
    const rel = `sources/${name}`;
    const id = fileId(name);
    if (sourceIds.has(id)) problems.add(rel, '', `a second file for source ${id}`);
    sourceIds.add(id);
    const text = await readText(root, rel, files, problems);
    if (text === undefined) continue;
    const doc = parseYaml(rel, text, problems);
    if (doc === undefined) continue;
    if (!v.source(doc)) {
      schemaProblems(rel, v.source.errors, problems);
      continue;
    }
    const d = doc as { source: { id: string; name: string; key: { file: string; fingerprint: string }; webhook?: string } };
    if (d.source.id !== id) problems.add(rel, 'source.id', `must equal the file name (${JSON.stringify(id)})`);
    const key: KeyRef = { file: d.source.key.file, fingerprint: d.source.key.fingerprint };
    const armored = await readKey(root, realRoot, rel, 'source.key.file', key.file, files, problems);
    if (armored !== undefined) key.armored = armored;
    const source: SourceConfig['source'] = { id: d.source.id, name: d.source.name, key };
    if (d.source.webhook !== undefined) source.webhook = d.source.webhook;
    sources.set(d.source.id, { file: rel, source });
  }

  // peers/ (optional): validated like partners (a peer is redacted for like any recipient)
  const peers = new Map<string, PeerFile>();
  const peerPolicies = new Map<string, PeerPolicy>();
  for (const name of (await listYaml(root, 'peers')) ?? []) {
    const rel = `peers/${name}`;
    const text = await readText(root, rel, files, problems);
    if (text === undefined) continue;
    const doc = parseYaml(rel, text, problems);
    if (doc === undefined) continue;
    peers.set(fileId(name), { file: rel, data: doc });
    if (!v.peer(doc)) {
      schemaProblems(rel, v.peer.errors, problems);
      continue;
    }
    const d = doc as {
      peer: Omit<PeerPolicy['peer'], 'key' | 'tls' | 'competentAuthority'> & { key: { file: string; fingerprint: string }; tls?: { ca?: string; clientCertFingerprint?: string } };
      agreement: PeerPolicy['agreement'];
      fields: Record<string, unknown>;
      rules?: unknown[];
      hits?: { kinds?: string[]; detail?: PeerHitsPolicy['detail']; partnerRecordRef?: PeerHitsPolicy['partnerRecordRef'] };
      match?: unknown[];
    };
    if (d.peer.id !== fileId(name)) problems.add(rel, 'peer.id', `must equal the file name (${JSON.stringify(fileId(name))})`);
    if (ids.has(d.peer.id)) problems.add(rel, 'peer.id', `${JSON.stringify(d.peer.id)} is already a partner id`);
    checkAgreementDates(rel, d.agreement, problems);
    const fields = checkOperations(d.fields, { file: rel, where: (p) => loc('fields', p), problems, neverShare, kind: 'fields' });
    const rules = checkRules(rel, d.rules ?? [], neverShare, problems);
    checkPeerKeepsProtections(rel, fields, rules, neverShare, problems);
    // A peer may be asked first too (exchange/match-out.ts): the same allowlist checks as a partner's.
    const match = checkMatch(rel, d.match, d.agreement, neverShare, problems);
    const key: KeyRef = { file: d.peer.key.file, fingerprint: d.peer.key.fingerprint };
    const armored = await readKey(root, realRoot, rel, 'peer.key.file', key.file, files, problems);
    if (armored !== undefined) key.armored = armored;
    let tls: PeerPolicy['peer']['tls'];
    if (d.peer.tls) {
      if (d.peer.tls.ca !== undefined && !d.peer.url.startsWith('https://')) problems.add(rel, 'peer.url', 'must be https:// when peer.tls.ca is set');
      tls = {};
      const fp = d.peer.tls.clientCertFingerprint?.replace(/:/g, '').toUpperCase();
      if (fp) tls.clientCertFingerprint = fp.match(/../g)!.join(':');
      if (d.peer.tls.ca !== undefined) {
        tls.caFile = d.peer.tls.ca;
        const ca = await readKey(root, realRoot, rel, 'peer.tls.ca', d.peer.tls.ca, files, problems);
        if (ca === undefined || !/-----BEGIN CERTIFICATE-----/.test(ca)) problems.add(rel, 'peer.tls.ca', 'must be a PEM certificate file in the policy directory');
        else tls.ca = ca;
      }
    }
    peerPolicies.set(d.peer.id, {
      file: rel,
      peer: {
        id: d.peer.id,
        name: d.peer.name,
        force: d.peer.force,
        url: d.peer.url.replace(/\/+$/, ''),
        key,
        ...(tls ? { tls } : {}),
        competentAuthority: true,
        ...(d.peer.enforcesConditions ? { enforcesConditions: [...d.peer.enforcesConditions] } : {}),
      },
      agreement: structuredClone(d.agreement),
      fields,
      rules,
      ...(match ? { match } : {}),
      // What the file does not say is the minimum: kind and subject, no detail, no record refs.
      hits: {
        declared: d.hits !== undefined,
        ...(d.hits?.kinds ? { kinds: [...d.hits.kinds] } : {}),
        detail: d.hits?.detail ?? 'drop',
        partnerRecordRef: d.hits?.partnerRecordRef ?? 'drop',
      },
    });
  }

  const set: PolicySet = {
    dir: root,
    revision: revisionOf(files),
    files: fileDigests(files),
    loadedAt: now.toISOString(),
    gateway,
    partners: new Map([...partners].sort((a, b) => (a[0] < b[0] ? -1 : 1))),
    sources: new Map([...sources].sort((a, b) => (a[0] < b[0] ? -1 : 1))),
    peers,
    peerPolicies,
  };
  return { set, problems: problems.list };
}

