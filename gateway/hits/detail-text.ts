/**
 * A hit's `detail` is free text from a partner's system that ends up on a force analyst's screen (the
 * bundle, the dashboard, a terminal running `jq`). Control characters have no business there: an ANSI
 * escape can rewrite what the terminal shows, a carriage return can hide the start of a line. They are
 * refused, naming each value's path, before anything else looks at the submission; tab and newline are
 * kept (addresses and notes use them). schemas/hits.schema.json says the same with a pattern, so hits
 * validated elsewhere (relayed by a peer gateway) are held to it too.
 */
import { GatewayError, type ErrorDetail } from '../errors/index.js';

/** C0 controls but tab (U+0009) and newline (U+000A), DEL, and the C1 controls (U+0080–U+009F, CSI included). */
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const CONTROL = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F]/;
const MAX_REPORTED = 20;

/** Throws `schema_violation` naming every `detail` string holding a control character; the values are not echoed. */
export function refuseControlCharacters(body: unknown): void {
  const hits = (body as { hits?: unknown } | null | undefined)?.hits;
  if (!Array.isArray(hits)) return; // the schema check reports the shape
  const problems: ErrorDetail[] = [];
  hits.forEach((hit: unknown, i) => {
    const detail = (hit as { detail?: unknown } | null | undefined)?.detail;
    if (!detail || typeof detail !== 'object' || Array.isArray(detail)) return;
    for (const [name, value] of Object.entries(detail)) {
      if (typeof value === 'string' && CONTROL.test(value)) {
        problems.push({ path: `/hits/${i}/detail/${name.replace(/~/g, '~0').replace(/\//g, '~1')}`, message: 'must not contain control characters (ANSI escapes and the like; only tab and newline are allowed)' });
      }
    }
  });
  if (problems.length) throw new GatewayError('schema_violation', 'The hits submission holds control characters in detail values', problems.slice(0, MAX_REPORTED));
}
