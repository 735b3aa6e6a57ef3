/**
 * What an audit record is findable by: its search terms, derived from its fields. The store
 * (store/audit.ts) keeps one index per term; the indexes only speed up `GET /v1/audit`, they prove
 * nothing and can be rebuilt from the chain.
 */
/** What a record is findable by. Values are ids or keyed HMACs, never dossier content. */
export type TermDimension = 'kind' | 'partner' | 'dossier' | 'packet' | 'ref' | 'subject';

/** The index terms of one record (`dimension:value`), derived from its fields. */
export function termsOf(record: Record<string, unknown>): Array<[TermDimension, string]> {
  const out: Array<[TermDimension, string]> = [];
  const str = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 200;
  if (str(record.kind)) out.push(['kind', record.kind]);
  if (str(record.recipient)) out.push(['partner', record.recipient]);
  if (str(record.dossier)) out.push(['dossier', record.dossier]);
  if (str(record.packet)) out.push(['packet', record.packet]);
  if (str(record.notice)) out.push(['packet', record.notice]);
  const index = record.index as { reference?: unknown; subjects?: unknown } | undefined;
  if (index && typeof index === 'object') {
    if (str(index.reference)) out.push(['ref', index.reference]);
    if (Array.isArray(index.subjects)) for (const s of new Set(index.subjects)) if (str(s)) out.push(['subject', s]);
  }
  return out;
}
