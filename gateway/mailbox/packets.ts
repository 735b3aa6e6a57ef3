/**
 * What a partner can do with its mailbox: list, retrieve, acknowledge. A packet belonging to another
 * partner answers exactly like one that does not exist. Retrieval is audited before the packet is served.
 */
import type { AuditLog } from '../audit/log.js';
import type { Client } from '../config/clients.js';
import { armorMessage } from '../crypto/binary.js';
import { GatewayError } from '../errors/index.js';
import type { Mailbox, PacketRecord } from './mailbox.js';
import { packetEvents } from '../metrics/metrics.js';

export interface PacketSummary {
  id: string;
  createdAt: string;
  expiresAt: string;
  state: PacketRecord['state'];
  /**
   * `packet`; `match` for a match request (identifiers only: answer hit or no trace per subject, the
   * rest follows for the hits); `blind-match` for a blind-match request (answered by the partner's client,
   * gateway/client/blind.ts); `recall` for a recall notice about the packet named in `recalls`.
   */
  type: 'packet' | 'match' | 'blind-match' | 'recall';
  recalls?: string;
}

export class Packets {
  constructor(private readonly mailbox: Mailbox, private readonly audit: AuditLog) {}

  /**
   * `query.state=delivered`: only what has not been retrieved yet, oldest first; otherwise the newest.
   * `query.limit`: 1–500 (default 100).
   */
  async list(client: Client, query: Record<string, unknown> = {}): Promise<PacketSummary[]> {
    const problems = Object.keys(query)
      .filter((k) => k !== 'state' && k !== 'limit')
      .map((k) => ({ path: k, message: 'unknown filter' }));
    if (query.state !== undefined && query.state !== 'delivered') problems.push({ path: 'state', message: 'the only state filter is "delivered" (not yet retrieved)' });
    const limit = query.limit === undefined ? 100 : Number(query.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 500) problems.push({ path: 'limit', message: 'must be an integer from 1 to 500' });
    if (problems.length) throw new GatewayError('query_invalid', 'The packet list query is not valid', problems);
    const rows = await this.mailbox.list(client.partner!, limit, query.state === 'delivered');
    return rows.map((p) => ({
      id: p.id,
      createdAt: p.createdAt,
      expiresAt: p.expiresAt,
      state: p.state,
      type: p.type ?? 'packet',
      ...(p.type === 'recall' && p.recalls ? { recalls: p.recalls } : {}),
    }));
  }

  async retrieve(client: Client, id: string): Promise<string> {
    const packet = await this.own(client, id);
    await this.audit.append({ kind: 'consultation', action: 'packet.retrieved', actor: client.id, packet: id, dossier: packet.dossier, recipient: packet.partner });
    await this.mailbox.advance(packet, 'retrieved', new Date().toISOString());
    packetEvents.inc({ partner: packet.partner, event: 'retrieved' });
    return armorMessage(packet.message);
  }

  async acknowledge(client: Client, id: string): Promise<PacketSummary> {
    const packet = await this.own(client, id);
    await this.audit.append({ kind: 'acknowledgement', action: 'packet.acknowledged', actor: client.id, packet: id, dossier: packet.dossier, recipient: packet.partner });
    await this.mailbox.advance(packet, 'acknowledged', new Date().toISOString());
    packetEvents.inc({ partner: packet.partner, event: 'acknowledged' });
    return { id, createdAt: packet.createdAt, expiresAt: packet.expiresAt, state: 'acknowledged', type: packet.type ?? 'packet' };
  }

  private async own(client: Client, id: string): Promise<PacketRecord> {
    const packet = /^pkt_[a-z2-7]{1,64}$/.test(id) ? await this.mailbox.get(id) : undefined;
    if (!packet || packet.partner !== client.partner || Date.parse(packet.expiresAt) <= Date.now()) {
      throw new GatewayError('not_found', 'No such packet');
    }
    return packet;
  }
}
