/**
 * The per-peer hits policy: what of this gateway's partners' hits may be relayed to a peer gateway (on
 * a dossier that peer sent), from the `hits:` block of `peers/<id>.yaml`, filled in at load with the
 * minimum for whatever the file leaves out (policy/load.ts). Pure.
 *
 *  - `kinds`: only hits of these kinds cross (absent: every kind);
 *  - `detail`: the partner's record kept as reported, dropped (`{}`, the default), or generalised
 *    (GENERALISED_FIELDS below, the postcode cut to its district);
 *  - `partnerRecordRef`: kept, or dropped (the default).
 *
 * Whatever the policy, a relayed hit carries its subject ref, kind, partner, match fields, confidence,
 * when it was received, the agreement reference it came under and whether the partner signed it.
 */
import type { StoredHit } from '../hits/store.js';
import type { PeerHitsPolicy } from '../policy/types.js';

/** The hit as it crosses to the peer (the subject is this gateway's own id; the envelope maps it to a ref). */
export interface RelayedHit {
  id: string;
  subject: string;
  partner: string;
  kind: StoredHit['kind'];
  detail: StoredHit['detail'];
  matchedOn: string[];
  confidence: StoredHit['confidence'];
  partnerRecordRef?: string;
  receivedAt: string;
  agreement: { reference: string };
  signed: boolean;
}

/**
 * The detail fields a generalised record keeps: places no finer than a town and descriptions that do not
 * single out a record. Street lines, house numbers, names, dates, account and reference numbers go.
 */
export const GENERALISED_FIELDS: ReadonlySet<string> = new Set([
  'town',
  'county',
  'district',
  'area',
  'region',
  'country',
  'make',
  'model',
  'colour',
  'tenure',
  'status',
  'type',
  'sector',
]);

/** `CV11 4AB` → `CV11`: the outward code (district) of a UK postcode; undefined for anything else. */
function postcodeDistrict(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const m = /^\s*([A-Za-z]{1,2}[0-9][0-9A-Za-z]?)\s*[0-9][A-Za-z]{2}\s*$/.exec(value);
  return m ? m[1]!.toUpperCase() : undefined;
}

function generalise(detail: StoredHit['detail']): StoredHit['detail'] {
  const out: StoredHit['detail'] = {};
  for (const [name, value] of Object.entries(detail)) {
    if (name === 'postcode') {
      const district = postcodeDistrict(value);
      if (district !== undefined) out.postcodeDistrict = district;
    } else if (GENERALISED_FIELDS.has(name)) {
      out[name] = value;
    }
  }
  return out;
}

/** The hits that may cross under `policy`, each reduced to what may cross; and how many may not. */
export function applyHitsPolicy(hits: StoredHit[], policy: PeerHitsPolicy): { relayed: RelayedHit[]; notRelayed: number } {
  const allowed = policy.kinds === undefined ? undefined : new Set(policy.kinds);
  const relayed: RelayedHit[] = [];
  for (const h of hits) {
    if (allowed && !allowed.has(h.kind)) continue;
    relayed.push({
      id: h.id,
      subject: h.subject,
      partner: h.partner,
      kind: h.kind,
      detail: policy.detail === 'keep' ? h.detail : policy.detail === 'generalise' ? generalise(h.detail) : {},
      matchedOn: h.matchedOn,
      confidence: h.confidence,
      ...(policy.partnerRecordRef === 'keep' && h.partnerRecordRef !== undefined ? { partnerRecordRef: h.partnerRecordRef } : {}),
      receivedAt: h.receivedAt,
      agreement: h.agreement,
      signed: h.signed === true,
    });
  }
  return { relayed, notRelayed: hits.length - relayed.length };
}
