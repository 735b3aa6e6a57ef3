/**
 * Schema validation at the door. One Ajv instance, both interchange schemas compiled once at module
 * load. Every failure is a GatewayError carrying one detail per violation, addressed by JSON Pointer.
 */
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { ErrorObject, ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { GatewayError, type ErrorDetail } from '../errors/index.js';
import { quickCheck } from './quick-check.js';
import { dossierSchema, hitsSchema } from './schemas.js';
import type { Classification, Dossier, HitsSubmission } from './types.js';

const ALLOWED_CLASSIFICATIONS: readonly Classification[] = ['OFFICIAL', 'OFFICIAL-SENSITIVE'];

/** Object keys refused anywhere in a body, whatever the schema says. */
const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

/** Deeper than any valid document; the key scan stops here instead of walking attacker-sized nesting. */
const MAX_DEPTH = 32;
/** At most this many details are returned; the rest are summarised in one last detail. */
const MAX_DETAILS = 50;

const DOSSIER_MESSAGE = 'The dossier does not match the schema';
const HITS_MESSAGE = 'The hits submission does not match the schema';
const CLASSIFICATION_MESSAGE =
  'Cordon handles OFFICIAL and OFFICIAL-SENSITIVE material only; SECRET and above must not be sent to it';

const ajv = new Ajv2020({ strict: true, allErrors: true, allowUnionTypes: true });
addFormats.default(ajv);
ajv.addKeyword({ keyword: 'x-kind', schemaType: 'string' });

const checkDossier: ValidateFunction = ajv.compile(dossierSchema);
/** Yes/no, cheaper, never accepts what checkDossier refuses: most bodies are valid and stop there. */
const quickDossier = quickCheck(dossierSchema);
const checkHits: ValidateFunction = ajv.compile(hitsSchema);

/**
 * Validate a parsed JSON body as a dossier. Throws `classification_refused` when the classification is
 * anything but OFFICIAL or OFFICIAL-SENSITIVE (checked first), otherwise `schema_violation` with every
 * violation found.
 */
export function validateDossier(body: unknown): Dossier {
  if (!isPlainObject(body)) {
    throw new GatewayError('schema_violation', DOSSIER_MESSAGE, [{ path: '', message: 'must be a JSON object' }]);
  }
  if (Object.hasOwn(body, 'classification')) {
    const value = body.classification;
    if (!ALLOWED_CLASSIFICATIONS.includes(value as Classification)) {
      throw new GatewayError('classification_refused', CLASSIFICATION_MESSAGE, [
        { path: '/classification', message: `must be one of ${ALLOWED_CLASSIFICATIONS.join(', ')}`, keyword: 'classification' },
      ]);
    }
  }
  const details = structuralDetails(body, checkDossier, quickDossier);
  if (details.length === 0) details.push(...referenceDetails(body as unknown as Dossier));
  if (details.length > 0) throw new GatewayError('schema_violation', DOSSIER_MESSAGE, cap(details));
  return body as unknown as Dossier;
}

/** Validate a parsed JSON body as a partner's hits submission. Throws `schema_violation`. */
export function validateHits(body: unknown): HitsSubmission {
  if (!isPlainObject(body)) {
    throw new GatewayError('schema_violation', HITS_MESSAGE, [{ path: '', message: 'must be a JSON object' }]);
  }
  const details = structuralDetails(body, checkHits);
  if (details.length > 0) throw new GatewayError('schema_violation', HITS_MESSAGE, cap(details));
  return body as unknown as HitsSubmission;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * Forbidden keys first, then the schema's own errors (minus those the key scan already reported). A
 * body the quick check accepts is valid; any other is checked in full, so every violation is named.
 */
function structuralDetails(body: Record<string, unknown>, check: ValidateFunction, quick?: (body: unknown) => boolean): ErrorDetail[] {
  const details = forbiddenKeyDetails(body);
  const seen = new Set(details.map((d) => d.path));
  if (!quick?.(body) && !check(body)) {
    for (const error of check.errors ?? []) {
      const detail = toDetail(error);
      if (detail === undefined || seen.has(detail.path)) continue;
      const key = `${detail.path}\u0000${detail.message}`;
      if (seen.has(key)) continue;
      seen.add(key);
      details.push(detail);
    }
  }
  return details;
}

/**
 * True when a body holds a forbidden key or nests past MAX_DEPTH. The common case (neither) is settled
 * by this walk, which builds no paths; only a body that fails is walked again to say where.
 */
function needsKeyScan(body: unknown): boolean {
  const values: unknown[] = [body];
  const depths: number[] = [0];
  while (values.length > 0) {
    const value = values.pop() as object;
    const depth = depths.pop()!;
    if (depth > MAX_DEPTH) return true;
    const children: unknown[] = Array.isArray(value) ? value : Object.values(value);
    if (!Array.isArray(value)) for (const key of Object.keys(value)) if (FORBIDDEN_KEYS.has(key)) return true;
    for (const child of children) {
      if (child !== null && typeof child === 'object') {
        values.push(child);
        depths.push(depth + 1);
      }
    }
  }
  return false;
}

/** Iterative walk: reports every `__proto__`/`constructor`/`prototype` key, and nesting past MAX_DEPTH. */
function forbiddenKeyDetails(body: unknown): ErrorDetail[] {
  if (!needsKeyScan(body)) return [];
  const details: ErrorDetail[] = [];
  const stack: Array<{ value: unknown; path: string; depth: number }> = [{ value: body, path: '', depth: 0 }];
  while (stack.length > 0) {
    const { value, path, depth } = stack.pop()!;
    if (value === null || typeof value !== 'object') continue;
    if (depth > MAX_DEPTH) {
      details.push({ path, message: `must not be nested more than ${MAX_DEPTH} levels deep`, keyword: 'maxDepth' });
      continue;
    }
    // Only objects and arrays can hold keys: leaves are neither pushed nor given a path.
    if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) {
        const child: unknown = value[i];
        if (child !== null && typeof child === 'object') stack.push({ value: child, path: `${path}/${i}`, depth: depth + 1 });
      }
      continue;
    }
    const keys = Object.keys(value);
    for (let i = keys.length - 1; i >= 0; i--) {
      const key = keys[i]!;
      if (FORBIDDEN_KEYS.has(key)) {
        details.push({ path: `${path}/${escapePointer(key)}`, message: `property name "${key}" is not allowed`, keyword: 'forbiddenKey' });
        continue;
      }
      const child = (value as Record<string, unknown>)[key];
      if (child !== null && typeof child === 'object') stack.push({ value: child, path: `${path}/${escapePointer(key)}`, depth: depth + 1 });
    }
  }
  return details.reverse();
}

function toDetail(error: ErrorObject): (ErrorDetail & { path: string }) | undefined {
  const base = error.instancePath;
  switch (error.keyword) {
    case 'if':
    case 'propertyNames':
      // `if` only says "must match then"; the `then` errors say what. `propertyNames` is followed by
      // the failing name's own error, which carries the name.
      return undefined;
    case 'additionalProperties': {
      const name = String((error.params as { additionalProperty: string }).additionalProperty);
      return { path: `${base}/${escapePointer(name)}`, message: 'is not an allowed property', keyword: error.keyword };
    }
    case 'required': {
      const name = String((error.params as { missingProperty: string }).missingProperty);
      return { path: `${base}/${escapePointer(name)}`, message: 'is required', keyword: error.keyword };
    }
    default: {
      const name = (error as ErrorObject & { propertyName?: string }).propertyName;
      if (name !== undefined) {
        return { path: `${base}/${escapePointer(name)}`, message: `property name ${error.message ?? 'is invalid'}`, keyword: error.keyword };
      }
      return { path: base, message: error.message ?? 'is invalid', keyword: error.keyword };
    }
  }
}

/**
 * Rules JSON Schema cannot say: subject ids are unique, associates name another subject of the dossier,
 * and a `derivedFrom` names an intelligence item of the dossier (an address from a report nobody can
 * find would have no provenance to withhold it by).
 */
function referenceDetails(dossier: Dossier): ErrorDetail[] {
  const details: ErrorDetail[] = [];
  const firstIndex = new Map<string, number>();
  dossier.subjects.forEach((subject, i) => {
    const first = firstIndex.get(subject.id);
    if (first === undefined) firstIndex.set(subject.id, i);
    else details.push({ path: `/subjects/${i}/id`, message: `duplicates the id of /subjects/${first}`, keyword: 'uniqueSubjectId' });
  });
  dossier.subjects.forEach((subject, i) => {
    subject.associates?.forEach((association, j) => {
      const path = `/subjects/${i}/associates/${j}/subject`;
      if (association.subject === subject.id) {
        details.push({ path, message: 'must name another subject, not the subject itself', keyword: 'subjectRef' });
      } else if (!firstIndex.has(association.subject)) {
        details.push({ path, message: 'must be the id of a subject in this dossier', keyword: 'subjectRef' });
      }
    });
  });
  details.push(...provenanceDetails(dossier));
  return details;
}

/** The item arrays that may say which intelligence item they came from (`derivedFrom`). */
const DERIVED_SUBJECT_ARRAYS = ['addresses', 'vehicles', 'businesses'] as const;

function provenanceDetails(dossier: Dossier): ErrorDetail[] {
  const details: ErrorDetail[] = [];
  const ids = new Set<string>();
  for (const subject of dossier.subjects) for (const item of subject.intelligence ?? []) ids.add(item.id);
  const check = (items: ReadonlyArray<{ derivedFrom?: string }> | undefined, at: string) => {
    items?.forEach((item, j) => {
      if (item.derivedFrom !== undefined && !ids.has(item.derivedFrom)) {
        details.push({ path: `${at}/${j}/derivedFrom`, message: 'must be the id of an intelligence item in this dossier', keyword: 'intelligenceRef' });
      }
    });
  };
  dossier.subjects.forEach((subject, i) => {
    for (const name of DERIVED_SUBJECT_ARRAYS) check(subject[name], `/subjects/${i}/${name}`);
  });
  check(dossier.locations, '/locations');
  return details;
}

function cap(details: ErrorDetail[]): ErrorDetail[] {
  if (details.length <= MAX_DETAILS) return details;
  const shown = details.slice(0, MAX_DETAILS - 1);
  shown.push({ message: `${details.length - shown.length} more violations not shown`, keyword: 'truncated' });
  return shown;
}

function escapePointer(token: string): string {
  return token.replace(/~/g, '~0').replace(/\//g, '~1');
}
