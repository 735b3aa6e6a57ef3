/**
 * Policy paths: dots between properties, `[]` after an array, exactly as `schemaLeafPaths()` lists them
 * (`subjects[].addresses[].postcode`, `subjects[].phones[]`, `subjects[].intelligence[]`). A policy may
 * also name an array without its `[]` (`subjects[].vehicles: count`); the loader canonicalises that.
 */

/** `a[].b.c` → ['a[]', 'b', 'c']. */
export function segments(path: string): string[] {
  return path.split('.');
}

/** The strict ancestors of a path, nearest last: `a[].b.c` → ['a[]', 'a[].b']. */
export function ancestors(path: string): string[] {
  const out: string[] = [];
  let i = path.indexOf('.');
  while (i !== -1) {
    out.push(path.slice(0, i));
    i = path.indexOf('.', i + 1);
  }
  return out;
}

/** Whether `a` is a strict ancestor of `b`. */
export function isAncestor(a: string, b: string): boolean {
  return b.length > a.length && b.startsWith(a) && b.charCodeAt(a.length) === 46; /* '.' */
}

export function depth(path: string): number {
  let n = 0;
  for (let i = 0; i < path.length; i++) if (path.charCodeAt(i) === 46) n++;
  return n;
}

export const SUBJECTS = 'subjects[]';
const SUBJECT_PREFIX = 'subjects[].';
export const SUBJECT_ID = 'subjects[].id';
export const ASSOCIATE_SUBJECT = 'subjects[].associates[].subject';

export function isSubjectPath(path: string): boolean {
  return path === SUBJECTS || path.startsWith(SUBJECT_PREFIX);
}

/** A well-formed path: identifiers separated by dots, each optionally followed by `[]`. */
export const PATH_SYNTAX = /^[A-Za-z][A-Za-z0-9]{0,63}(\[\])?(\.[A-Za-z][A-Za-z0-9]{0,63}(\[\])?){0,15}$/;
