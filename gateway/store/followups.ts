/**
 * Redis storage of follow-ups after a match request (gateway/fanout/followup.ts): per dossier one hash,
 * field the partner, value the sealed record (AES-256-GCM, bound by its AAD to the dossier and the
 * partner) of the force's approvals and the follow-up packets claimed so far. It lives exactly as long
 * as the dossier's status record (filed among its companions, erased with it). Replaced with a
 * compare-and-set (store/scripts/followup-put.lua): a follow-up packet is claimed before it is made, so
 * two jobs at once never disclose the same subject twice.
 */
import type { Redis } from 'ioredis';
import { seal, unseal } from '../crypto/seal.js';
import { GatewayError } from '../errors/index.js';
import { RECORD_TTL_SECONDS } from './dossiers.js';
import type { Keys } from './redis.js';
import { evalScript, loadScript } from './scripts.js';

const PUT = loadScript('followup-put');

export interface Officer {
  name: string;
  id: string;
}

/** The force's approval of a follow-up: who approved which subjects (the dossier's own ids), when. */
export interface FollowUpApproval {
  officer: Officer;
  /** The client that sent it (the force's system credential). */
  client: string;
  at: string;
  subjects: string[];
}

/** One follow-up packet: claimed (its id and subjects fixed) before it is made. */
export interface FollowUpRound {
  packet: string;
  subjects: string[];
  at: string;
  approvedBy?: Officer[];
}

export interface FollowUpRecord {
  approvals: FollowUpApproval[];
  rounds: FollowUpRound[];
}

export interface HeldFollowUp {
  record: FollowUpRecord;
  /** The sealed value as read (undefined: none yet), for the compare-and-set. */
  sealed?: string;
}

export class FollowUpStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly sealKey: Buffer,
  ) {}

  async get(dossierId: string, partner: string): Promise<HeldFollowUp> {
    const sealed = await this.redis.hget(this.keys.followUps(dossierId), partner);
    if (!sealed) return { record: { approvals: [], rounds: [] } };
    return { sealed, record: JSON.parse(unseal(this.sealKey, sealed, aad(dossierId, partner)).toString('utf8')) as FollowUpRecord };
  }

  /**
   * Writes the record if it has not changed since `before` was read; false otherwise (nothing written).
   * `not_found` when the dossier record is gone, `dossier_recalled` when it was recalled.
   */
  async put(dossierId: string, partner: string, record: FollowUpRecord, before: string | undefined): Promise<boolean> {
    const k = this.keys;
    const value = seal(this.sealKey, JSON.stringify(record), aad(dossierId, partner));
    const res = (await evalScript(this.redis, PUT, 3, k.dossier(dossierId), k.followUps(dossierId), k.dossierCompanions(dossierId), String(Date.now() + RECORD_TTL_SECONDS * 1000), partner, value, before ?? '')) as number;
    if (res === -3) return false;
    if (res === -2) throw new GatewayError('dossier_recalled', 'The dossier has been recalled by its originator; nothing more is disclosed from it');
    if (res < 0) throw new GatewayError('not_found', 'No such dossier');
    return true;
  }
}

function aad(dossierId: string, partner: string): string {
  return `followup:${dossierId}:${partner}`;
}
