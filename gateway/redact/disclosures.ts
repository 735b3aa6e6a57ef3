/**
 * What a projection records as it runs: the environment it projects in (the recipient's pseudonym
 * key, the dossier's date, the subjects' refs) and the sink of (path, operation label) pairs it emits,
 * which become the packet's disclosure list. Only paths and labels, never values.
 */
import type { CalendarDate } from '../policy/dates.js';
import { ASSOCIATE_SUBJECT } from '../policy/paths.js';
import type { Provenance } from './provenance.js';

export interface ProjectionEnv {
  /** The recipient's pseudonymisation key. */
  pseudonymKey: Buffer;
  /** The dossier's createdAt (UTC calendar date), for age bands. */
  at: CalendarDate | undefined;
  /** Filled while projecting with the (path, operation label) pairs emitted (see DisclosureSink). */
  disclosed: DisclosureSink;
  /**
   * The subjects in this packet: dossier subject id → packet ref. `subjects[].associates[]` items are
   * kept only when they point at one of these, with `subject` replaced by the ref. Without it, no
   * associate is ever emitted.
   */
  refs?: ReadonlyMap<string, string>;
  /**
   * Which intelligence items this recipient is given, for the items derived from them (provenance.ts);
   * without it no item with a `derivedFrom` is ever emitted.
   */
  provenance?: Provenance;
}

/** One (path, operation label) pair emitted. */
export interface Disclosed {
  path: string;
  op: string;
}

/**
 * Where a projection records what it emits: `set(disclosureKey(path, op), pair)`, possibly more than once
 * per pair. A Map keyed by disclosureKey keeps each pair once, in first-emitted order; redact() uses the
 * cheaper Disclosures.
 */
interface DisclosureSink {
  set(key: string, pair: DisclosurePair): unknown;
}

/** A (path, label) pair, made by Recorder only, and the last Disclosures.list() pass that listed it. */
class DisclosurePair implements Disclosed {
  mark = 0;
  /** What the packet's disclosure list says: an associate's subject goes out as the other subject's ref. */
  readonly shown: string;
  constructor(
    readonly path: string,
    readonly op: string,
  ) {
    this.shown = path === ASSOCIATE_SUBJECT && op === 'keep' ? 'ref' : op;
  }
}

/**
 * One DisclosurePair per distinct (path, label) ever compiled, so that repeats are the same object and can be
 * found without hashing. Bounded by the paths and labels the policies use.
 */
const pairs = new Map<string, DisclosurePair>();
let listPasses = 0;

/**
 * The pairs emitted during one redaction. Recording is a push (a recorder already skips its own repeats
 * into the same sink); repeats from different recorders of the same pair are dropped once, by list().
 * Hashing every pair into a Map per packet was a large part of the cost of redacting a small dossier.
 */
export class Disclosures implements DisclosureSink {
  private readonly recorded: DisclosurePair[] = [];
  set(_key: string, pair: DisclosurePair): this {
    this.recorded.push(pair);
    return this;
  }
  /** Each pair once, in first-recorded order, as new objects (an associate's subject shown as `ref`). */
  list(): Disclosed[] {
    // Marks are written only in this synchronous loop, with a number no other pass uses.
    const pass = ++listPasses;
    const out: Disclosed[] = [];
    for (const p of this.recorded) {
      if (p.mark === pass) continue;
      p.mark = pass;
      out.push({ path: p.path, op: p.shown });
    }
    return out;
  }
}


/** The key under which a (path, operation) disclosure is recorded in ProjectionEnv.disclosed. */
export function disclosureKey(path: string, op: string): string {
  return `${path}\u0000${op}`;
}


/** Records one (path, operation) pair; its key and pair are found once, at compile time. */
export class Recorder {
  private readonly key: string;
  private readonly pair: DisclosurePair;
  /** The sink of the previous call: only paths and labels, never values. */
  private last: DisclosureSink | undefined;
  constructor(path: string, op: string) {
    this.key = disclosureKey(path, op);
    let pair = pairs.get(this.key);
    if (pair === undefined) {
      pair = new DisclosurePair(path, op);
      pairs.set(this.key, pair);
    }
    this.pair = pair;
  }
  record(env: ProjectionEnv): void {
    // Most calls record into the same sink as the previous one (array items, the same packet).
    if (env.disclosed === this.last) return;
    env.disclosed.set(this.key, this.pair);
    this.last = env.disclosed;
  }
}
