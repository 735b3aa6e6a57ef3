/**
 * Peers as recipients: a peer file (`policies/peers/<id>.yaml`) is decided and redacted for exactly
 * like a partner file, so the policy engine sees the peers as the "partners" of a derived set that
 * shares the gateway-wide constraints (neverShare, alwaysFilter) and the revision. Parsed keys and the
 * decider are built once per loaded policy set.
 */
import type { RecipientKey } from '../crypto/openpgp.js';
import { Decider } from '../policy/decide.js';
import type { LiveSet } from '../policy/live.js';
import type { PartnerPolicy, PeerPolicy, PolicySet } from '../policy/types.js';

export interface PeerView {
  decider: Decider;
  policies: Map<string, PeerPolicy>;
  /** Parsed pinned key per peer, or why it cannot be used. */
  keys: Map<string, Promise<RecipientKey | { invalid: string }>>;
}

export function asPartner(p: PeerPolicy): PartnerPolicy {
  return {
    file: p.file,
    // A police force's gateway is a competent authority; the handling-condition codes it honours are
    // the ones it declares it enforces on its own fan-out (policy/handling.ts), nothing else.
    partner: { id: p.peer.id, name: p.peer.name, kind: 'peer-force', key: p.peer.key, checks: [], competentAuthority: true },
    agreement: { ...p.agreement, conditionsHonoured: [...(p.peer.enforcesConditions ?? [])] },
    fields: p.fields,
    rules: p.rules,
  };
}

export class PeerDirectory {
  private readonly views = new WeakMap<PolicySet, PeerView>();

  constructor(
    private readonly live: () => LiveSet<RecipientKey>,
    private readonly parseKey: (armored: string, fingerprint: string) => Promise<RecipientKey>,
  ) {}

  view(): PeerView {
    const set = this.live().set;
    let v = this.views.get(set);
    if (v) return v;
    const policies = set.peerPolicies ?? new Map<string, PeerPolicy>();
    const derived: PolicySet = { ...set, partners: new Map([...policies].map(([id, p]) => [id, asPartner(p)])) };
    const keys = new Map<string, Promise<RecipientKey | { invalid: string }>>();
    for (const [id, p] of policies) {
      const { armored, fingerprint, file } = p.peer.key;
      keys.set(
        id,
        armored === undefined
          ? Promise.resolve({ invalid: `key file ${file} is missing` })
          : this.parseKey(armored, fingerprint).catch((err: Error) => ({ invalid: err.message })),
      );
    }
    v = { decider: new Decider(derived), policies, keys };
    this.views.set(set, v);
    return v;
  }

  /**
   * The peers whose pinned key cannot be used (missing, unreadable, not the pinned one, expired or
   * revoked when parsed), with why, sorted by id: nothing is exchanged with them until it is fixed.
   */
  async unusableKeys(): Promise<Array<{ peer: string; problem: string }>> {
    const keys = [...this.view().keys];
    const parsed = await Promise.all(keys.map(([, k]) => k));
    return keys
      .flatMap(([peer], i) => {
        const k = parsed[i]!;
        return 'invalid' in k ? [{ peer, problem: k.invalid }] : [];
      })
      .sort((a, b) => (a.peer < b.peer ? -1 : 1));
  }

  /** The peer whose gateway speaks for `force`, if one is configured. */
  byForce(force: string): PeerPolicy | undefined {
    return [...this.view().policies.values()].find((p) => p.peer.force === force);
  }
}
