/**
 * Search terms for "who received data about this dossier / this subject" without storing either in
 * plaintext: keyed HMACs (HMAC-SHA-256 with the keyring's `auditIndex`, crypto/keyring.ts, and
 * crypto/seal.ts `hmacId`). The dossier reference and subject ids are scoped by the source that sent them, so "S1"
 * of one force never matches "S1" of another. Without the gateway's master secret the terms reveal
 * nothing, not even whether two forces used the same reference; with it, a governance query computes
 * the same term and finds the records.
 */
import { hmacId } from '../crypto/seal.js';
import { GatewayError } from '../errors/index.js';

export interface IndexTerms {
  /** HMAC of the dossier reference (scoped by source). */
  reference?: string;
  /** HMACs of the subject ids concerned (scoped by source), distinct. */
  subjects?: string[];
}

export class AuditIndexer {
  constructor(private readonly key: Buffer) {
    if (key.length < 32) throw new GatewayError('key_invalid', 'the audit index key must be 32 bytes');
  }

  reference(source: string, reference: string): string {
    return hmacId(this.key, 'audit/reference', source, reference);
  }

  subject(source: string, subjectId: string): string {
    return hmacId(this.key, 'audit/subject', source, subjectId);
  }

  /** The `index` field of a record about (some subjects of) a dossier. */
  terms(source: string, reference?: string, subjectIds: string[] = []): IndexTerms {
    return this.forDossier(source, reference)(subjectIds);
  }

  /**
   * Terms for several records about one dossier (a fan-out writes one per partner): each HMAC is
   * computed once, however many records name the same subject.
   */
  forDossier(source: string, reference?: string): (subjectIds: string[]) => IndexTerms {
    const ref = reference !== undefined ? this.reference(source, reference) : undefined;
    const memo = new Map<string, string>();
    return (subjectIds) => {
      const subjects = [...new Set(subjectIds)].map((id) => {
        let term = memo.get(id);
        if (term === undefined) memo.set(id, (term = this.subject(source, id)));
        return term;
      });
      return { ...(ref !== undefined ? { reference: ref } : {}), ...(subjects.length ? { subjects } : {}) };
    };
  }
}
