/**
 * What the source sees of a recall in its dossier's status (`GET /v1/dossiers/:id`, `recall`): when it
 * was issued, by which client, its reason, and per partner that was sent a packet the recall notice and
 * whether the partner has pulled it. Codes, times and ids only: the recall's note never leaves the
 * sealed notices, and nothing of the dossier's content is here.
 */
import type { Delivery, DossierStore, RecallMark } from '../store/dossiers.js';

/**
 * `pending`: no notice recorded for this partner yet (a recall interrupted before reaching it: send
 * the same recall again); `not_sent`: none could be sent (see `problem`); `delivered` | `retrieved` |
 * `acknowledged`: the notice in the partner's mailbox; `expired`: the notice has since been erased at
 * the end of its retention.
 */
export type NoticeStateName = 'pending' | 'not_sent' | 'delivered' | 'retrieved' | 'acknowledged' | 'expired';

export interface RecallPartnerStatus {
  partner: string;
  /** The packet the notice recalls. */
  packet?: string;
  notice?: string;
  noticeState: NoticeStateName;
  /** When the partner pulled the notice, when it acknowledged it. */
  retrievedAt?: string;
  acknowledgedAt?: string;
  /** Why no notice could be sent, e.g. `recipient_key_invalid`: tell the partner another way. */
  problem?: string;
}

export interface RecallStatus {
  reason: string;
  issuedAt: string;
  /** The client that issued the recall. */
  by: string;
  partners: RecallPartnerStatus[];
}

const NOTICE_STATES = new Set<NoticeStateName>(['delivered', 'retrieved', 'acknowledged']);

/** `partners`: the dossier's partners, in order; every one that was sent a packet was due a notice. */
export async function recallStatus(
  store: Pick<DossierStore, 'noticeStates'>,
  partners: string[],
  recall: RecallMark,
  deliveries: Record<string, Delivery>,
): Promise<RecallStatus> {
  const due = partners.filter((p) => deliveries[p]?.packetId || recall.notices[p]);
  const ids = due.map((p) => recall.notices[p]?.notice).filter((n): n is string => typeof n === 'string');
  const states = await store.noticeStates(ids);
  const now = Date.now();
  return {
    reason: recall.reason,
    issuedAt: recall.at,
    by: recall.by,
    partners: due.map((partner): RecallPartnerStatus => {
      const outcome = recall.notices[partner];
      const packet = deliveries[partner]?.packetId;
      const base = { partner, ...(packet ? { packet } : {}) };
      if (!outcome) return { ...base, noticeState: 'pending' };
      if (!outcome.notice) return { ...base, noticeState: 'not_sent', ...(outcome.problem ? { problem: outcome.problem } : {}) };
      const held = states.get(outcome.notice);
      // Past its expiry a notice can no longer be pulled, erased yet or not (as deliveries read).
      const expired = !held || (held.expiresAt !== undefined && Date.parse(held.expiresAt) <= now);
      return {
        ...base,
        notice: outcome.notice,
        noticeState: expired ? 'expired' : NOTICE_STATES.has(held.state as NoticeStateName) ? (held.state as NoticeStateName) : 'delivered',
        ...(held?.retrievedAt ? { retrievedAt: held.retrievedAt } : {}),
        ...(held?.acknowledgedAt ? { acknowledgedAt: held.acknowledgedAt } : {}),
      };
    }),
  };
}
