/**
 * Keeps what links need from a dossier after the dossier itself is erased: its normalised addresses,
 * VRMs, phone numbers and company numbers per subject, sealed, plus the keyed HMACs of those values in
 * the source's link index. Runs in the worker before fan-out (while the sealed dossier still exists),
 * once per dossier: a retried job finds the items already stored and does nothing.
 */
import { unseal } from '../crypto/seal.js';
import type { Dossier } from '../intake/types.js';
import type { DossierStore } from '../store/dossiers.js';
import { dossierItems, matchTokens } from './links.js';
import type { HitStore } from './store.js';

export class DossierLinkIndexer {
  constructor(
    private readonly store: DossierStore,
    private readonly hitStore: HitStore,
    private readonly sealKey: Buffer,
  ) {}

  async index(dossierId: string): Promise<void> {
    const record = await this.store.get(dossierId);
    if (!record || record.state !== 'accepted') return;
    if (await this.hitStore.hasDossierLinks(dossierId)) return;
    const sealed = await this.store.getSealed(dossierId);
    let dossier: Dossier;
    try {
      dossier = JSON.parse(unseal(this.sealKey, sealed ?? '', dossierId).toString('utf8')) as Dossier;
    } catch {
      return; // missing or unreadable: fan-out fails the dossier with dossier_unreadable, at once
    }
    const items = dossierItems(dossierId, dossier);
    const macs = items.flatMap((i) => matchTokens(i).map((t) => this.hitStore.mac(record.source, t.kind, t.value)));
    await this.hitStore.putDossierLinks({ dossier: dossierId, reference: dossier.reference, items }, record.source, macs);
  }
}
