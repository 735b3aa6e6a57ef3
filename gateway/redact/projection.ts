/**
 * The allowlist projection: a plan's operations compiled ONCE into a tree of small functions that
 * BUILD the output from the allowlisted paths only. It never copies an input object wholesale and
 * never walks input keys: it looks up the keys the plan names, so a field added to the schema later
 * (or smuggled into an input) has no way out. Fail closed throughout:
 *  - at a leaf path only scalars (or arrays of scalars) are copied; an object there is dropped;
 *  - a value of the wrong shape for its path (an object where an array is expected…) is dropped;
 *  - empty objects and arrays are dropped, missing values stay absent;
 *  - an unknown operation, or a leaf operation with paths below it, throws at compile time.
 * Pure: no I/O, no clock. What it emits is recorded in disclosures.ts; leaf operations are leaf-ops.ts.
 */
import { describeOp } from '../policy/restrictiveness.js';
import { evaluateCondition, stableJson } from '../policy/condition.js';
import { PATH_SYNTAX, SUBJECTS } from '../policy/paths.js';
import type { Condition, Operation } from '../policy/types.js';
import { isScalar, type Scalar } from './values.js';
import { Recorder, type ProjectionEnv } from './disclosures.js';
import { scalarTransform } from './leaf-ops.js';
import { DERIVED_ARRAYS, provenanceOnly } from './provenance.js';

const ASSOCIATES_PATH = 'subjects[].associates[]';
/** The property of a subject holding its intelligence items. */
const INTELLIGENCE = 'intelligence';

/**
 * Builds the projected object, or undefined when nothing at all is emitted. With `into`, the fields are
 * added to that object instead (which is returned), after whatever it already holds.
 */
type Projection = (input: unknown, env: ProjectionEnv, into?: Record<string, unknown>) => Record<string, unknown> | undefined;

type Fn = (value: unknown, env: ProjectionEnv) => unknown;

interface Node {
  name: string;
  array: boolean;
  /** Full policy path (with the root prefix), for disclosure records. */
  path: string;
  op?: Operation;
  children: Map<string, Node>;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

interface Child {
  name: string;
  fn: Fn;
  /** Set for a scalar `keep` leaf, the commonest child: done in childOutput, without calling `fn`. */
  keep?: Recorder;
}

/** `muted`: a child that is run (its checks and records unchanged) but never written (see compileProjection). */
function compileChildren(children: Map<string, Node>, muted?: string): Child[] {
  return [...children.values()].map((c): Child => {
    const fn = compileNode(c);
    if (c.name === muted) return { name: c.name, fn: (v, env) => void fn(v, env) };
    const keep = c.op?.op === 'keep' && !c.array && c.path !== ASSOCIATES_PATH ? new Recorder(c.path, 'keep') : undefined;
    return keep === undefined ? { name: c.name, fn } : { name: c.name, fn, keep };
  });
}

/** What a child emits for the value of its own property, or undefined. */
function childOutput(c: Child, v: unknown, env: ProjectionEnv): unknown {
  if (c.keep === undefined) return c.fn(v, env);
  if (!isScalar(v)) return undefined;
  c.keep.record(env);
  return v;
}

function objectFn(children: Map<string, Node>): Projection {
  return buildObject(compileChildren(children));
}

function buildObject(compiled: Child[]): Projection {
  return (obj, env, into) => {
    if (!isPlainObject(obj)) return into;
    let out = into;
    for (const c of compiled) {
      if (!Object.hasOwn(obj, c.name)) continue;
      const r = childOutput(c, obj[c.name], env);
      if (r === undefined) continue;
      out ??= {};
      out[c.name] = r;
    }
    return out;
  };
}

/**
 * The top-level fields of a projection one by one, each computed and recorded as the projection does it,
 * in the same order, but not put in an object: for a caller that orders them itself (redact keeps the
 * dossier's own key order) and would otherwise build the object twice.
 */
interface Fields {
  /** Field name → position in values(). */
  readonly index: ReadonlyMap<string, number>;
  /** Each field's output by position; undefined when nothing is emitted. */
  values(input: unknown, env: ProjectionEnv): unknown[];
}

function fieldsOf(compiled: Child[]): Fields {
  return {
    index: new Map(compiled.map((c, i) => [c.name, i])),
    values(obj, env) {
      const out: unknown[] = new Array(compiled.length);
      if (!isPlainObject(obj)) return out;
      for (let i = 0; i < compiled.length; i++) {
        const c = compiled[i] as Child;
        if (Object.hasOwn(obj, c.name)) out[i] = childOutput(c, obj[c.name], env);
      }
      return out;
    },
  };
}

function compileNode(node: Node): Fn {
  const fn = compileNodeInner(node);
  if (node.path === ASSOCIATES_PATH) return associatesOnly(fn);
  if (node.array && DERIVED_ARRAYS.has(node.path)) return provenanceOnly(fn, node.path);
  return fn;
}

/**
 * Associates point at other subjects of the dossier by their ids. Before any operation sees them,
 * items pointing at a subject that is not in this packet are dropped and the others get the packet
 * ref instead of the id (a copy of the item: the input is never modified).
 */
function associatesOnly(fn: Fn): Fn {
  return (value, env) => {
    if (!Array.isArray(value) || env.refs === undefined) return undefined;
    const mapped: unknown[] = [];
    for (const item of value) {
      if (!isPlainObject(item) || typeof item.subject !== 'string') continue;
      const ref = env.refs.get(item.subject);
      if (ref === undefined) continue;
      mapped.push({ ...item, subject: ref });
    }
    return mapped.length === 0 ? undefined : fn(mapped, env);
  };
}

function compileNodeInner(node: Node): Fn {
  const op = node.op;
  if (op === undefined) {
    if (node.children.size === 0) return () => undefined;
    const build = objectFn(node.children);
    if (!node.array) return build;
    return (value, env) => {
      if (!Array.isArray(value)) return undefined;
      const out: unknown[] = [];
      for (const item of value) {
        const r = build(item, env);
        if (r !== undefined) out.push(r);
      }
      return out.length > 0 ? out : undefined;
    };
  }

  switch (op.op) {
    case 'strip':
      return () => undefined;

    case 'replace': {
      if (typeof op.with !== 'string') throw new Error(`invalid replace operation at ${node.path}`);
      const text = op.with;
      const rec = new Recorder(node.path, 'replace');
      return (value, env) => {
        if (value === undefined || value === null) return undefined;
        rec.record(env);
        return text;
      };
    }

    case 'count': {
      const where = op.where;
      const rec = new Recorder(node.path, 'count');
      return (value, env) => {
        if (!Array.isArray(value)) return undefined;
        let n = 0;
        for (const item of value) if (where === undefined || evaluateCondition(where, item)) n++;
        if (n === 0) return undefined;
        rec.record(env);
        return n;
      };
    }

    case 'filter': {
      const where = op.where;
      if (where === undefined || where === null || typeof where !== 'object') throw new Error(`filter without a condition at ${node.path}`);
      if (node.children.size === 0) return () => undefined;
      const build = objectFn(node.children);
      const rec = new Recorder(node.path, 'filter');
      return (value, env) => {
        if (!Array.isArray(value)) return undefined;
        const out: unknown[] = [];
        for (const item of value) {
          if (!isPlainObject(item) || !evaluateCondition(where, item)) continue;
          const r = build(item, env);
          if (r !== undefined) out.push(r);
        }
        if (out.length === 0) return undefined;
        rec.record(env);
        return out;
      };
    }

    case 'generalise':
      if (op.to === 'town' || op.to === 'postcode') return compileAddress(node, op.to, op.where);
      break;
    default:
      break;
  }

  const transform = scalarTransform(op);
  if (transform === undefined) throw new Error(`unknown operation ${stableJson(op)} at ${node.path}`);
  if (node.children.size > 0) throw new Error(`${node.path}: ${describeOp(op)} applies to a leaf, but paths below it are listed`);
  const rec = new Recorder(node.path, describeOp(op));
  if (op.op === 'keep' && !node.array) {
    // As objectFn does it inline, for a keep leaf reached otherwise (an address's chosen field).
    return (value, env) => {
      if (!isScalar(value)) return undefined;
      rec.record(env);
      return value;
    };
  }
  if (node.array) {
    return (value, env) => {
      if (!Array.isArray(value)) return undefined;
      const out: Scalar[] = [];
      for (const item of value) {
        const r = transform(item, env);
        if (r !== undefined) out.push(r);
      }
      if (out.length === 0) return undefined;
      rec.record(env);
      return out;
    };
  }
  return (value, env) => {
    const r = transform(value, env);
    if (r !== undefined) rec.record(env);
    return r;
  };
}

/** Address generalisation: each item (object with town/postcode) → `{town}` or `{postcode}`. */
function compileAddress(node: Node, field: 'town' | 'postcode', condition: Condition | undefined): Fn {
  const child = node.children.get(field);
  for (const name of node.children.keys()) {
    if (name !== field) throw new Error(`${node.path}: generalise:${field} keeps only ${field}, but ${node.path}.${name} is listed`);
  }
  let transform: (v: unknown, env: ProjectionEnv) => unknown;
  let label: string;
  if (child?.op !== undefined) {
    transform = compileNode(child);
    label = describeOp(child.op);
  } else {
    transform = (v) => (isScalar(v) ? v : undefined);
    label = `generalise:${field}`;
  }
  const rec = new Recorder(`${node.path}.${field}`, label);
  const one = (item: unknown, env: ProjectionEnv): Record<string, unknown> | undefined => {
    if (!isPlainObject(item) || !Object.hasOwn(item, field)) return undefined;
    if (condition !== undefined && !evaluateCondition(condition, item)) return undefined;
    const v = transform(item[field], env);
    if (v === undefined) return undefined;
    if (child?.op === undefined) rec.record(env);
    return { [field]: v };
  };
  if (!node.array) return one;
  return (value, env) => {
    if (!Array.isArray(value)) return undefined;
    const out: unknown[] = [];
    for (const item of value) {
      const r = one(item, env);
      if (r !== undefined) out.push(r);
    }
    return out.length > 0 ? out : undefined;
  };
}

function parseSegment(seg: string): { name: string; array: boolean } {
  return seg.endsWith('[]') ? { name: seg.slice(0, -2), array: true } : { name: seg, array: false };
}

function buildTrie(ops: Record<string, Operation>, root: string | undefined): Node {
  const top: Node = { name: '', array: false, path: root ?? '', children: new Map() };
  const prefix = root === undefined ? '' : `${root}.`;
  for (const [full, op] of Object.entries(ops)) {
    if (root !== undefined && !full.startsWith(prefix)) throw new Error(`projection: ${full} is not under ${root}`);
    const rel = full.slice(prefix.length);
    if (!PATH_SYNTAX.test(rel)) throw new Error(`projection: malformed path ${JSON.stringify(full)}`);
    if (op === null || typeof op !== 'object' || typeof (op as { op?: unknown }).op !== 'string') {
      throw new Error(`projection: ${full} has no operation`);
    }
    let node = top;
    let path = root ?? '';
    for (const seg of rel.split('.')) {
      const { name, array } = parseSegment(seg);
      path = path === '' ? seg : `${path}.${seg}`;
      let next = node.children.get(name);
      if (next === undefined) {
        next = { name, array, path, children: new Map() };
        node.children.set(name, next);
      } else if (next.array !== array) {
        throw new Error(`projection: ${full} disagrees with another path about whether ${name} is an array`);
      }
      node = next;
    }
    node.op = op;
  }
  return top;
}

interface Compiled {
  project: Projection;
  fields: Fields;
  /** Under the `subjects[]` root: whether the projection emits one intelligence item (see intelligenceProbe). */
  intelligence?: (item: unknown, env: ProjectionEnv) => boolean;
}

const byIdentity = new WeakMap<object, Map<string, Compiled>>();
const byKey = new Map<string, Compiled>();
const MAX_CACHED = 1000;

/**
 * Compile a projection for one set of operations. Paths are full policy paths; with `root` (e.g.
 * `subjects[]`) every path must lie under it and the projection applies to one item of that array.
 * Under the `subjects[]` root the subject's `id` is never projected (the caller puts the packet ref in).
 * Cached by the ops object and by its content: compiled once per distinct operation set.
 */
export function compileProjection(ops: Record<string, Operation>, root?: string): Projection {
  return compiled(ops, root).project;
}

/**
 * Whether a subject projection emits one item of the subject's `intelligence[]`, in whatever form (run on
 * that item alone: items of an array are projected independently). Undefined when the projection has no
 * intelligence at all. For provenance: what is derived from an item goes only where the item goes.
 */
export function intelligenceProbe(ops: Record<string, Operation>): ((item: unknown, env: ProjectionEnv) => boolean) | undefined {
  return compiled(ops, SUBJECTS).intelligence;
}

/** The same projection (root: the dossier), as its top-level fields (see Fields). */
export function compileFields(ops: Record<string, Operation>): Fields {
  return compiled(ops, undefined).fields;
}

function compiled(ops: Record<string, Operation>, root: string | undefined): Compiled {
  const rootKey = root ?? '';
  const hit = byIdentity.get(ops)?.get(rootKey);
  if (hit !== undefined) return hit;
  const key = `${rootKey}\u0000${stableJson(ops)}`;
  let c = byKey.get(key);
  if (c === undefined) {
    let effective = ops;
    if (root === 'subjects[]' && Object.hasOwn(ops, 'subjects[].id')) {
      effective = { ...ops };
      delete effective['subjects[].id'];
    }
    const top = buildTrie(effective, root);
    // The caller puts the packet ref in a subject's `id` (see redact.ts): never written over.
    const children = compileChildren(top.children, root === SUBJECTS ? 'id' : undefined);
    c = { project: buildObject(children), fields: fieldsOf(children) };
    const intel = root === SUBJECTS ? children.find((x) => x.name === INTELLIGENCE) : undefined;
    if (intel !== undefined) {
      c.intelligence = (item, env) => {
        const r = childOutput(intel, [item], env);
        return Array.isArray(r) && r.length === 1;
      };
    }
    if (byKey.size >= MAX_CACHED) {
      const oldest = byKey.keys().next().value;
      if (oldest !== undefined) byKey.delete(oldest);
    }
    byKey.set(key, c);
  }
  let perRoot = byIdentity.get(ops);
  if (perRoot === undefined) {
    perRoot = new Map();
    byIdentity.set(ops, perRoot);
  }
  perRoot.set(rootKey, c);
  return c;
}
