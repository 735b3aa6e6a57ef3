/** The policy revision: a content hash of every file the set was loaded from, named in every packet. */
import { createHash } from 'node:crypto';

/** sha256 over every loaded file (sorted by relative path, then content), first 16 hex characters. */
export function revisionOf(files: ReadonlyArray<{ rel: string; content: string }>): string {
  const h = createHash('sha256');
  const sorted = [...files].sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
  const seen = new Set<string>();
  for (const f of sorted) {
    if (seen.has(f.rel)) continue;
    seen.add(f.rel);
    h.update(`${f.rel}\u0000${Buffer.byteLength(f.content, 'utf8')}\u0000`);
    h.update(f.content, 'utf8');
  }
  return h.digest('hex').slice(0, 16);
}

/** Each loaded file once (as the revision counts it), sorted by path, with the SHA-256 (hex) of its UTF-8 content. */
export function fileDigests(files: ReadonlyArray<{ rel: string; content: string }>): Array<{ rel: string; sha256: string }> {
  const byRel = new Map<string, string>();
  for (const f of files) if (!byRel.has(f.rel)) byRel.set(f.rel, createHash('sha256').update(f.content, 'utf8').digest('hex'));
  return [...byRel].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([rel, sha256]) => ({ rel, sha256 }));
}
