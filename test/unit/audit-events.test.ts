import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { describe, expect, it } from 'vitest';
import { AUDIT_ACTIONS, AUDIT_KINDS, type AuditAction, type AuditEvent, type AuditEventOf } from '../../gateway/audit/events.js';
import { GENESIS, recordHash } from '../../gateway/audit/log.js';

const schema = JSON.parse(readFileSync(new URL('../../schemas/audit-event.schema.json', import.meta.url), 'utf8')) as {
  properties: { action: { enum: string[] }; kind: { enum: string[] } };
};
const ajv = new Ajv2020({ strict: true, allErrors: true });
addFormats.default(ajv);
const validate = ajv.compile(schema);

/** The smallest event of an action: its kind and action, and what that action requires. */
function minimal<A extends AuditAction>(action: A): AuditEventOf<A> {
  const base = { kind: AUDIT_ACTIONS[action], action } as AuditEvent;
  if (base.action !== 'audit.checkpoint') return base as AuditEventOf<A>;
  const checkpoint = { seq: 0, hash: GENESIS, signedAt: '2026-12-04T00:00:00.000Z', signer: 'A'.repeat(40), every: 100 };
  return { ...base, checkpoint, signature: '-----BEGIN PGP SIGNATURE-----' } as AuditEventOf<A>;
}

function asRecord(event: AuditEvent): Record<string, unknown> {
  const body = { ...event, seq: 1, at: '2026-12-04T00:00:00.000Z', prev: GENESIS };
  return { ...body, hash: recordHash(body) };
}

describe('the audit event union', () => {
  const actions = Object.keys(AUDIT_ACTIONS) as AuditAction[];

  it('lists exactly the actions the record schema enumerates', () => {
    expect([...actions].sort()).toEqual([...schema.properties.action.enum].sort());
    expect([...AUDIT_KINDS].sort()).toEqual([...schema.properties.kind.enum].sort());
  });

  it.each(actions)('a minimal %s record validates against the schema', (action) => {
    const record = asRecord(minimal(action));
    expect(validate(record), JSON.stringify(validate.errors)).toBe(true);
  });

  it.each(actions)('a %s record with another kind is refused by the schema', (action) => {
    const other = AUDIT_KINDS.find((k) => k !== AUDIT_ACTIONS[action] && k !== 'checkpoint')!;
    expect(validate(asRecord({ ...minimal(action), kind: other } as unknown as AuditEvent))).toBe(false);
  });

  it('refuses an action the union does not know', () => {
    expect(validate(asRecord({ kind: 'decision', action: 'delivery.forgotten' } as unknown as AuditEvent))).toBe(false);
  });

  it('types a full event of each shape', () => {
    // Compile-time checks: each member takes its own fields and the kind its action fixes.
    const events: AuditEvent[] = [
      { kind: 'erasure', action: 'packet.erased', packet: 'pkt_a', dossier: `dos_${'0'.repeat(32)}`, recipient: 'dvla', reason: 'recalled', state: 'delivered' },
      { kind: 'disclosure', action: 'recall.notice_sent', packet: 'pkt_a', notice: 'pkt_b', recipient: 'dvla', keyFingerprint: 'F' },
      // @ts-expect-error the kind of packet.created is disclosure
      { kind: 'decision', action: 'packet.created' },
      // @ts-expect-error no such action
      { kind: 'decision', action: 'delivery.forgotten' },
    ];
    for (const e of events.slice(0, 2)) expect(validate(asRecord(e)), JSON.stringify(validate.errors)).toBe(true);
  });
});
