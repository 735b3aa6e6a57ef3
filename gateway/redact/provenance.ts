/**
 * Provenance: an address, vehicle, business or location may say which intelligence item it was learned
 * from (`derivedFrom: "INT-…"`). It goes to a recipient only when that intelligence item itself does:
 * an address known only from a CHIS report tells whoever receives it what the report said, so wherever
 * the report is withheld (a gateway-wide filter, the recipient's own filter, its subject excluded, the
 * subject's intelligence stripped, or a recipient granted no intelligence at all) the address is too.
 * Fail closed: without a Provenance in the environment, or with a `derivedFrom` that is not a string,
 * every derived item is withheld.
 *
 * "Disclosed" is read off the projection itself (redact.ts asks projection.ts, item by item, whether
 * the recipient's `subjects[].intelligence[]` projection emits it), so no second reading of the policy
 * can disagree with what the packet holds. The `derivedFrom` field is a field like any other: it goes
 * out only where a policy grants it. Pure: no I/O.
 */
import { schemaLeafPaths } from '../dossier/paths.js';
import type { ProjectionEnv } from './disclosures.js';

/** The policy paths of the item arrays whose items may carry `derivedFrom`, read off the dossier schema. */
export const DERIVED_ARRAYS: ReadonlySet<string> = new Set(
  schemaLeafPaths()
    .filter((p) => p.path.endsWith('[].derivedFrom'))
    .map((p) => p.path.slice(0, -'.derivedFrom'.length)),
);

/** One item withheld for its provenance: where it is in the input dossier, and why. */
export interface Withheld {
  /** The input's own indexes: `subjects[0].addresses[1]`, `locations[2]`. */
  path: string;
  /** The input index of the subject it belongs to; absent for a dossier-level item (a location). */
  subjectIndex?: number;
  reason: string;
}

/** What one redaction knows about provenance; redact.ts makes one per packet. */
export class Provenance {
  /** The input index of the subject being projected; -1 outside subjects. */
  subject = -1;
  readonly withheld: Withheld[] = [];
  private ids: ReadonlySet<string> | undefined;
  /** `find`: the ids of the intelligence items this recipient is given, asked the first time it is needed. */
  constructor(private readonly find: () => ReadonlySet<string>) {}

  disclosed(id: unknown): boolean {
    if (typeof id !== 'string') return false;
    this.ids ??= this.find();
    return this.ids.has(id);
  }

  withhold(path: string, id: unknown): void {
    const reason = typeof id === 'string' ? `derived from withheld intelligence ${id}` : 'derivedFrom does not name an intelligence item';
    this.withheld.push(this.subject >= 0 ? { path, subjectIndex: this.subject, reason } : { path, reason });
  }
}

type Fn = (value: unknown, env: ProjectionEnv) => unknown;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * Wraps the compiled projection of a DERIVED_ARRAYS path: before any operation sees the array (keep,
 * filter, count, generalise…), the items derived from intelligence this recipient is not given are
 * taken out and recorded. An array left empty is absent (not even a `replace` text says it was there).
 */
export function provenanceOnly(fn: Fn, arrayPath: string): Fn {
  // `subjects[].addresses[]` → ['subjects', '.addresses', '']: the input indexes go between the parts.
  const parts = arrayPath.split('[]');
  const itemPath = (env: ProjectionEnv, j: number): string =>
    parts.length === 3 ? `${parts[0]}[${env.provenance?.subject ?? -1}]${parts[1]}[${j}]` : `${parts[0]}[${j}]`;
  return (value, env) => {
    if (!Array.isArray(value)) return fn(value, env);
    let kept: unknown[] | undefined;
    for (let j = 0; j < value.length; j++) {
      const item: unknown = value[j];
      if (isPlainObject(item) && Object.hasOwn(item, 'derivedFrom') && env.provenance?.disclosed(item.derivedFrom) !== true) {
        kept ??= value.slice(0, j);
        env.provenance?.withhold(itemPath(env, j), item.derivedFrom);
        continue;
      }
      kept?.push(item);
    }
    if (kept === undefined) return fn(value, env);
    return kept.length === 0 ? undefined : fn(kept, env);
  };
}
