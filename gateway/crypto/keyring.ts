/**
 * The keyring: every key the gateway derives from its master secret, by name. Each is HKDF-SHA-256 of
 * the master secret under a fixed label (crypto/seal.ts deriveKey); the labels below are part of the
 * stored data (sealed records, packet and envelope ids, audit index terms), so they never change.
 * Built once from the master secret; every key is derived on first use and kept.
 */
import { deriveKey } from './seal.js';

export class Keyring {
  private readonly cache = new Map<string, Buffer>();

  constructor(private readonly master: Buffer) {
    // Checked now (a master secret too short fails at start-up, not on first use).
    deriveKey(master, 'seal');
  }

  private key(label: string): Buffer {
    let k = this.cache.get(label);
    if (k === undefined) this.cache.set(label, (k = deriveKey(this.master, label)));
    return k;
  }

  /** Seals what the gateway keeps in Redis (dossiers, refs, hits, link items). */
  get seal(): Buffer {
    return this.key('seal');
  }
  /** Authenticates dossier and packet records' metadata in Redis (store/record-mac.ts). */
  get recordMac(): Buffer {
    return this.key('record-mac');
  }
  /** Packet ids (derived from dossier and partner) and recall notice ids. */
  get packetId(): Buffer {
    return this.key('packet-id');
  }
  /** Exchange envelope ids (derived from dossier and peer). */
  get envelopeId(): Buffer {
    return this.key('envelope-id');
  }
  /** Hit ids (deduplication). */
  get hitId(): Buffer {
    return this.key('hit-id');
  }
  /** The audit trail's keyed index terms (GET /v1/audit). */
  get auditIndex(): Buffer {
    return this.key('audit-index');
  }
  /** One source's link index (keyed HMACs of normalised identifiers). */
  linkIndex(source: string): Buffer {
    return this.key(`link-index:${source}`);
  }
  /** A partner's pseudonyms (`pseudonymise` operations), unlinkable across partners. */
  pseudonym(partner: string): Buffer {
    return this.key(`pseudonym:${partner}`);
  }
  /** A peer gateway's pseudonyms. */
  peerPseudonym(peer: string): Buffer {
    return this.key(`pseudonym:peer:${peer}`);
  }
}
