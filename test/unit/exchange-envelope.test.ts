import { describe, expect, it } from 'vitest';
import { checkHeader, CLOCK_SKEW_MS, FRESHNESS_MS } from '../../gateway/exchange/envelope.js';
import { GatewayError } from '../../gateway/errors/index.js';
import type { PeerPolicy } from '../../gateway/policy/types.js';

const policy = { peer: { id: 'warwickshire', force: 'warwickshire' } } as unknown as PeerPolicy;
const now = Date.parse('2026-03-01T12:00:00Z');
const ENV = 'env_' + 'a'.repeat(20);

function header(over: Record<string, unknown> = {}) {
  return {
    type: 'dossier',
    id: ENV,
    from: 'warwickshire',
    to: 'west-midlands',
    issuedAt: new Date(now).toISOString(),
    expiresAt: new Date(now + FRESHNESS_MS).toISOString(),
    ...over,
  };
}

function problems(raw: unknown, me: string | null = 'west-midlands'): Array<{ path?: string; message: string }> {
  try {
    checkHeader(raw, policy, me ?? undefined, now);
  } catch (err) {
    expect(err).toBeInstanceOf(GatewayError);
    expect((err as GatewayError).code).toBe('envelope_invalid');
    return (err as GatewayError).details ?? [];
  }
  return [];
}

describe('envelope header check', () => {
  it('takes a fresh header addressed here, with the policy and agreement a dossier envelope carries', () => {
    const h = header({ policy: { id: 'peer:west-midlands', revision: 'abc' }, agreement: { reference: 'ISA-1', legalBasis: 'x', purpose: 'y' } });
    expect(checkHeader(h, policy, 'west-midlands', now)).toEqual(h);
    expect(checkHeader(header({ type: 'hits', inReplyTo: ENV }), policy, 'west-midlands', now).type).toBe('hits');
    // After-match: a match envelope carries its policy and agreement; answers quote the match envelope.
    expect(checkHeader(header({ type: 'match', policy: { id: 'peer:west-midlands', revision: 'abc' } }), policy, 'west-midlands', now).type).toBe('match');
    expect(checkHeader(header({ type: 'answers', inReplyTo: ENV }), policy, 'west-midlands', now).type).toBe('answers');
  });

  it('reports every problem at once, in the header order, in the same words as before the schema', () => {
    const found = problems(header({ type: 'parcel', id: 'x', from: 'staffordshire', to: 'staffordshire', issuedAt: new Date(now - FRESHNESS_MS - 1).toISOString(), expiresAt: new Date(now).toISOString() }));
    expect(found.map((p) => p.path)).toEqual(['/envelope/type', '/envelope/id', '/envelope/from', '/envelope/to', '/envelope/issuedAt', '/envelope/expiresAt']);
    expect(found[0]!.message).toBe('must be "dossier", "hits", "recall", "match" or "answers"');
    expect(found[1]!.message).toBe('must be an envelope id');
    expect(found[2]!.message).toContain('"warwickshire"');
  });

  it('refuses an envelope from the future beyond the clock skew, and one not addressed to a configured force', () => {
    expect(problems(header({ issuedAt: new Date(now + CLOCK_SKEW_MS + 1000).toISOString() })).map((p) => p.path)).toEqual(['/envelope/issuedAt']);
    expect(problems(header(), null)).toEqual([{ path: '/envelope/to', message: 'is addressed to another gateway (this is "unconfigured")' }]);
  });

  it('needs inReplyTo on hits, recall and answers envelopes', () => {
    expect(problems(header({ type: 'answers' }))).toEqual([{ path: '/envelope/inReplyTo', message: 'must name the match envelope answered' }]);
    expect(problems(header({ type: 'hits' }))).toEqual([{ path: '/envelope/inReplyTo', message: 'must name the dossier envelope the hits answer' }]);
    expect(problems(header({ type: 'recall', inReplyTo: 'env_X' }))).toEqual([{ path: '/envelope/inReplyTo', message: 'must name the dossier envelope recalled' }]);
  });

  it('refuses members the schema does not know, and a header that is not an object', () => {
    expect(problems(header({ note: 'hello' }))).toEqual([{ path: '/envelope/note', message: 'is not allowed in an envelope header' }]);
    expect(problems(header({ policy: { id: 'p', revision: 'r', extra: 1 } })).map((p) => p.path)).toEqual(['/envelope/policy/extra']);
    expect(problems('nope').map((p) => p.path)).toEqual(['/envelope/type', '/envelope/id', '/envelope/from', '/envelope/to', '/envelope/issuedAt', '/envelope/expiresAt']);
  });
});
