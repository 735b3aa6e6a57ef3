/** Canonical JSON (sorted keys, no undefined members) so a hash does not depend on property order. */
export function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * Canonical JSON of what `JSON.stringify` would store: exactly `canonical(JSON.parse(JSON.stringify(value)))`
 * in one walk, without the round trip. Plain objects, arrays and primitives are written directly (undefined,
 * functions and symbols dropped from objects and `null` in arrays, non-finite numbers `null`, as
 * JSON.stringify does); anything else (a Date, a class instance, a toJSON) takes the round trip, so the
 * result is the same for every input. Undefined when JSON.stringify gives nothing (undefined, a function).
 */
export function canonicalJson(value: unknown): string | undefined {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      return Number.isFinite(value) ? String(value) : 'null';
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object':
      break;
    case 'bigint':
      return JSON.stringify(value); // throws, as storing it would
    default:
      return undefined;
  }
  if (value === null) return 'null';
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return roundTrip(value);
  if (Array.isArray(value)) {
    if (Object.getPrototypeOf(value) !== Array.prototype) return roundTrip(value);
    let out = '[';
    for (let i = 0; i < value.length; i++) out += `${i ? ',' : ''}${canonicalJson(value[i]) ?? 'null'}`;
    return `${out}]`;
  }
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return roundTrip(value);
  const object = value as Record<string, unknown>;
  // Default sort compares UTF-16 code units, as canonical() does.
  const keys = Object.keys(object).sort();
  let out = '{';
  for (const key of keys) {
    const member = canonicalJson(object[key]);
    if (member === undefined) continue;
    out += `${out.length > 1 ? ',' : ''}${JSON.stringify(key)}:${member}`;
  }
  return `${out}}`;
}

function roundTrip(value: unknown): string | undefined {
  const json = JSON.stringify(value);
  return json === undefined ? undefined : canonical(JSON.parse(json));
}
