/**
 * Keeps what links need from a dossier after the dossier itself is erased: its normalised addresses,
 * VRMs, phone numbers and company numbers per subject, sealed, plus the keyed HMACs of those values in
 * the source's link index. Runs in the worker before fan-out (while the sealed dossier still exists),
 * once per dossier: a retried job finds the items already stored and changes nothing.
 */
import type { Dossier } from '../dossier/types.js';
import { dossierItems, matchTokens, packDossierItems } from './links.js';
import type { HitStore } from './store.js';

export class DossierLinkIndexer {
  constructor(private readonly hitStore: HitStore) {}

  /** Called by fan-out with the dossier it has just opened, so the sealed content is read once. */
  async index(dossierId: string, source: string, dossier: Dossier): Promise<void> {
    // No existence check first: the store writes once (SET NX), so a retried job changes nothing.
    const items = dossierItems(dossierId, dossier);
    const macs = items.flatMap((i) => matchTokens(i).map((t) => this.hitStore.mac(source, t.kind, t.value)));
    await this.hitStore.putDossierLinks({ dossier: dossierId, reference: dossier.reference, items: packDossierItems(dossierId, items) }, source, macs);
  }
}
