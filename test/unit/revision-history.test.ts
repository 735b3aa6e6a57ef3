/** The policy revisions a gateway process keeps for the console's diff: newest first, bounded, never the live one. */
import { describe, expect, it } from 'vitest';
import { RevisionHistory } from '../../gateway/governance/revisions.js';
import type { PolicySet } from '../../gateway/policy/types.js';

const set = (revision: string): PolicySet => ({ dir: '/p', revision, loadedAt: `2026-11-2${revision.length % 10}T00:00:00.000Z`, gateway: { neverShare: [], alwaysFilter: {} }, partners: new Map(), sources: new Map() });

describe('RevisionHistory', () => {
  it('lists retired sets newest first, without the live one, and finds them by revision', () => {
    const h = new RevisionHistory();
    const a = set('a'.repeat(16));
    const b = set('b'.repeat(16));
    const c = set('c'.repeat(16));
    h.retire(a, new Date('2026-11-21T10:00:00Z'));
    h.retire(b, new Date('2026-11-21T11:00:00Z'));
    expect(h.list(c).map((r) => [r.revision, r.replacedAt])).toEqual([
      [b.revision, '2026-11-21T11:00:00.000Z'],
      [a.revision, '2026-11-21T10:00:00.000Z'],
    ]);
    expect(h.get(a.revision, c)).toBe(a);
    expect(h.get(c.revision, c)).toBeUndefined();
    // Reverted to a: a is live again, so it is no longer an earlier revision.
    expect(h.list(a).map((r) => r.revision)).toEqual([b.revision]);
    expect(h.get(a.revision, a)).toBeUndefined();
  });

  it('keeps a revision once (moved to the front when it is retired again) and at most `max`', () => {
    const h = new RevisionHistory(3);
    const live = set('f'.repeat(16));
    for (const r of ['1', '2', '3', '4', '2']) h.retire(set(r.repeat(16)));
    expect(h.list(live).map((r) => r.revision[0])).toEqual(['2', '4', '3']);
  });
});
