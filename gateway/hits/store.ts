/**
 * The hit store as the hits module sees it: hits and the dossiers' link items (links.ts), sealed, in
 * Redis (store/hits.ts owns the keys and scripts).
 */
import type { DossierLinks as StoredLinks, HitStore as Store } from '../store/hits.js';
import type { LinkItem, PackedItem } from './links.js';

export type { StoredHit } from '../store/hits.js';
/** Link items are stored packed (links.ts `packDossierItems`); those stored before packing read as they are. */
export type HitStore = Store<PackedItem | LinkItem>;
export type DossierLinks = StoredLinks<PackedItem | LinkItem>;
