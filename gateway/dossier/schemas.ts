/**
 * The interchange schemas, read once from `schemas/` at the repository root and frozen.
 * validate.ts compiles them; paths.ts walks the dossier schema for policy tooling.
 */
import { readFileSync } from 'node:fs';

export type JsonSchema = Readonly<Record<string, unknown>>;

function load(name: string): JsonSchema {
  const url = new URL(`../../schemas/${name}`, import.meta.url);
  return deepFreeze(JSON.parse(readFileSync(url, 'utf8')) as Record<string, unknown>);
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

export const dossierSchema: JsonSchema = load('dossier.schema.json');
export const hitsSchema: JsonSchema = load('hits.schema.json');
