/**
 * The start-up check of the trail in Redis against the state directory's anchor. The log must still
 * hold the anchored record (same first record, same record at the anchored position): a log cut short
 * or replaced refuses to start the gateway rather than carry on a trail with a hole in it. An empty log
 * (a new or wiped Redis) under an anchor also refuses, unless the operator accepts a new trail by
 * setting `CORDON_AUDIT_ACCEPT_NEW_TRAIL` to the anchored sequence number (so a setting left behind
 * never accepts a later loss): its first record, `audit.trail_restarted`, names the trail that is gone.
 */
import path from 'node:path';
import { GatewayError } from '../errors/index.js';
import { anchorName, readAnchorFor } from './checkpoint.js';
import type { AuditLog, AuditRecord } from './log.js';

/** Returns a message for the operator's log when a new trail was started; throws when the start must be refused. */
export async function checkAnchor(log: AuditLog, stateDir: string | undefined, acceptNewTrail?: number): Promise<string | undefined> {
  if (!stateDir) return undefined;
  const store = log.store;
  const anchor = await readAnchorFor(stateDir, store.prefix);
  if (!anchor) return undefined;
  const file = path.join(stateDir, anchorName(anchor.prefix));
  const [length, firstRaw, atRaw] = await Promise.all([store.length(), store.at(0), store.at(anchor.seq - 1)]);
  if (length === 0 && (await store.head()) === null) {
    if (acceptNewTrail !== anchor.seq) {
      throw new GatewayError(
        'audit_unavailable',
        `The audit log in Redis is empty although ${file} anchors a trail up to seq ${anchor.seq} (${anchor.at}): it was wiped or this is another Redis. ` +
          `Nothing is served until an operator accepts a new trail: set CORDON_AUDIT_ACCEPT_NEW_TRAIL=${anchor.seq} (its first record will say the anchored trail is gone).`,
      );
    }
    const previous = { seq: anchor.seq, hash: anchor.hash, at: anchor.at, ...(anchor.first ? { first: anchor.first } : {}) };
    await log.append({
      kind: 'alteration',
      action: 'audit.trail_restarted',
      reason: `an operator accepted a new trail (CORDON_AUDIT_ACCEPT_NEW_TRAIL=${anchor.seq}): the audit log in Redis was empty and the trail anchored in ${anchorName(anchor.prefix)} is gone`,
      previous,
    });
    return `the audit log in Redis was empty although ${file} anchors a trail up to seq ${anchor.seq} (${anchor.at}): a new trail was started, as CORDON_AUDIT_ACCEPT_NEW_TRAIL asked, and its first record says so`;
  }
  const hashOf = (raw: string | null) => {
    try {
      return raw ? (JSON.parse(raw) as AuditRecord).hash : undefined;
    } catch {
      return undefined;
    }
  };
  if ((anchor.first !== undefined && hashOf(firstRaw) !== anchor.first) || hashOf(atRaw) !== anchor.hash) {
    throw new GatewayError(
      'audit_unavailable',
      `The audit log in Redis does not match the record anchored in ${file} (seq ${anchor.seq}, ${anchor.at}): it was cut short or replaced. ` +
        'Run `cordon audit verify --state` to see where; if this Redis was deliberately replaced, move the anchor file away to start a new trail.',
    );
  }
  log.expectTrail(anchor, anchor.format === 2);
  return undefined;
}
