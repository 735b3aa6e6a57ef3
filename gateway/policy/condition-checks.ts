/**
 * Checking conditions before they run: a rule's facts must be known for its scope, an item filter's
 * facts must be fields of the item, and every operator and value must fit the fact's type and values
 * (a condition that can never match is a silent policy error).
 */
import { conditionLeaves, LIST_FACT_OPERATORS, LIST_VALUE_OPERATORS, NUMERIC_OPERATORS } from './condition.js';
import { DOSSIER_FACT_TYPES, FACT_ENUM_PATHS, SUBJECT_FACT_TYPES, type FactType } from './facts.js';
import { article, getSchemaIndex, schemaItemType } from './schema-index.js';
import type { Condition } from './types.js';

function valueFits(type: string, enumValues: ReadonlyArray<string | number> | undefined, value: unknown, nullable: boolean): string | undefined {
  if (value === null) return nullable ? undefined : 'null never matches this fact';
  if ((type === 'string' && typeof value !== 'string') || ((type === 'number' || type === 'integer') && typeof value !== 'number') || (type === 'boolean' && typeof value !== 'boolean')) {
    return `${JSON.stringify(value)} is not a ${type === 'integer' ? 'number' : type}, so it never matches`;
  }
  if (enumValues !== undefined && !enumValues.includes(value as string | number)) {
    return `${JSON.stringify(value)} is not one of the values this fact can take (${enumValues.map((v) => JSON.stringify(v)).join(', ')})`;
  }
  return undefined;
}

/** Check one comparison against a fact of a known shape; returns problems as messages. */
function checkComparison(
  c: { fact: string; operator: string; value: unknown },
  shape: { type: string; list: boolean; nullable: boolean; enumValues?: ReadonlyArray<string | number> },
): string[] {
  const out: string[] = [];
  const { operator, value } = c;
  if (NUMERIC_OPERATORS.has(operator)) {
    if (shape.list || (shape.type !== 'number' && shape.type !== 'integer')) out.push(`${operator} needs a number fact; ${c.fact} is not one`);
    else if (typeof value !== 'number') out.push(`${operator} needs a number value`);
    return out;
  }
  if (LIST_FACT_OPERATORS.has(operator)) {
    if (!shape.list) out.push(`${operator} needs a list fact; ${c.fact} is not a list (use equal/in)`);
    else {
      const m = valueFits(shape.type, shape.enumValues, value, false);
      if (m) out.push(m);
    }
    return out;
  }
  if (shape.list) {
    out.push(`${c.fact} is a list: use contains/doesNotContain`);
    return out;
  }
  if (LIST_VALUE_OPERATORS.has(operator)) {
    if (!Array.isArray(value) || value.length === 0) out.push(`${operator} needs a non-empty list value`);
    else for (const v of value) {
      const m = valueFits(shape.type, shape.enumValues, v, false);
      if (m) out.push(m);
    }
    return out;
  }
  // equal / notEqual
  if (Array.isArray(value)) out.push(`${operator} compares with one value; use in/notIn for a list`);
  else {
    const m = valueFits(shape.type, shape.enumValues, value, shape.nullable);
    if (m) out.push(m);
  }
  return out;
}

function factShape(t: FactType, enumValues?: ReadonlyArray<string | number>) {
  switch (t) {
    case 'string':
      return { type: 'string', list: false, nullable: false, enumValues };
    case 'string?':
      return { type: 'string', list: false, nullable: true, enumValues };
    case 'number':
      return { type: 'number', list: false, nullable: false };
    case 'number?':
      return { type: 'number', list: false, nullable: true };
    case 'boolean':
      return { type: 'boolean', list: false, nullable: false };
    case 'boolean?':
      return { type: 'boolean', list: false, nullable: true };
    case 'string[]':
    case 'string[]?':
      // A list's items are never null (an unknown list is null as a whole: no contains/doesNotContain holds).
      return { type: 'string', list: true, nullable: false, enumValues };
  }
}

/** A rule's conditions: facts must be known for its scope, operators and values must fit them. */
export function checkRuleConditions(cond: Condition, scope: 'dossier' | 'subject'): Array<{ message: string }> {
  const known: Record<string, FactType> = scope === 'dossier' ? DOSSIER_FACT_TYPES : SUBJECT_FACT_TYPES;
  const { byPath } = getSchemaIndex();
  const out: Array<{ message: string }> = [];
  for (const c of conditionLeaves(cond)) {
    const t = Object.hasOwn(known, c.fact) ? known[c.fact] : undefined;
    if (t === undefined) {
      const hint = scope === 'dossier' && Object.hasOwn(SUBJECT_FACT_TYPES, c.fact) ? ` (${c.fact} is a subject fact: use when: subject)` : '';
      out.push({ message: `unknown fact ${JSON.stringify(c.fact)}${hint}; known facts: ${Object.keys(known).join(', ')}` });
      continue;
    }
    const enumPath = FACT_ENUM_PATHS[c.fact];
    const enumValues = enumPath !== undefined ? byPath.get(enumPath)?.enum : undefined;
    for (const m of checkComparison(c, factShape(t, enumValues))) out.push({ message: `${c.fact} ${c.operator}: ${m}` });
  }
  return out;
}

/** An item filter on the array at `arrayPath`: facts are the item's own fields by dotted name. */
export function checkItemCondition(cond: Condition, arrayPath: string): string[] {
  const { byPath } = getSchemaIndex();
  const out: string[] = [];
  for (const c of conditionLeaves(cond)) {
    const direct = byPath.get(`${arrayPath}.${c.fact}`);
    const list = direct === undefined ? byPath.get(`${arrayPath}.${c.fact}[]`) : undefined;
    const entry = direct ?? list;
    if (entry === undefined) {
      out.push(`unknown fact ${JSON.stringify(c.fact)}: the items of ${arrayPath} have no such field`);
      continue;
    }
    if (entry.type === 'object' || entry.type === 'array-of-objects') {
      out.push(`${c.fact} is ${article(entry.type)}; compare one of its fields`);
      continue;
    }
    const type = entry.type === 'array-of-scalars' ? (schemaItemType(entry.path) ?? 'string') : entry.type;
    const shape = { type, list: entry.type === 'array-of-scalars', nullable: false, enumValues: entry.enum };
    for (const m of checkComparison(c, shape)) out.push(`${c.fact} ${c.operator}: ${m}`);
  }
  return out;
}
