/**
 * Running rules: one json-rules-engine Engine per (revision, partner, scope), each behind a promise
 * queue so that it never runs two documents at once (its run status is shared, and a concurrent run
 * can skip rules: a silent leak), and the bounded LRU maps the decider caches outcomes and plans in.
 *
 * Unknown is not "no": json-rules-engine decides the rules whose facts are known; every rule it did
 * not fire is then evaluated three-valued on the same facts (condition.ts evaluateRuleCondition) and
 * fires when that comes out TRUE (an age known only to be under 18) or UNKNOWN (a fact it reads is
 * unknown), unless the rule says `unknown: ignore`. Every rule only tightens, so firing on unknown can
 * only withhold more.
 */
import { Engine } from 'json-rules-engine';
import { evaluateRuleCondition } from './condition.js';
import type { DossierFacts, SubjectFacts } from './facts.js';
import type { Rule } from './types.js';

/** A promise queue: one task at a time, in arrival order; a failing task does not stop the queue. */
class Mutex {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.tail.then(task);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

/** Which rules fired, in policy order, and for those that fired without their condition known to hold, the unknown facts they read. */
export interface Fired {
  names: string[];
  /** Rule name → the unknown facts it read (empty when it held on what is known, e.g. an age under 18). Absent for rules json-rules-engine fired. */
  unknown: ReadonlyMap<string, readonly string[]>;
}

const NONE: ReadonlyMap<string, readonly string[]> = new Map();

/** One json-rules-engine Engine and the queue that keeps it to one document at a time. */
export class RuleRunner {
  private readonly engine: Engine;
  private readonly mutex = new Mutex();
  private readonly order: Map<string, number>;
  private readonly rules: Rule[];
  /** Number of runs in progress on this engine (never more than 1). */
  private active = 0;

  constructor(rules: Rule[]) {
    this.engine = new Engine([], { allowUndefinedFacts: false, allowUndefinedConditions: false });
    for (const rule of rules) {
      this.engine.addRule({
        name: rule.name,
        conditions: structuredClone(rule.conditions) as never,
        event: { type: 'cordon.rule', params: { rule: rule.name } },
        priority: 1,
      });
    }
    this.order = new Map(rules.map((r, i) => [r.name, i]));
    this.rules = rules;
  }

  /** The rules that fired, in policy order (see the module comment for unknown facts). */
  run(facts: DossierFacts | SubjectFacts): Promise<Fired> {
    return this.mutex.run(async () => {
      this.active++;
      maxConcurrentRuns = Math.max(maxConcurrentRuns, this.active);
      try {
        const { results } = await this.engine.run({ ...facts });
        const known = new Set(results.filter((r) => r.result === true).map((r) => r.name));
        let unknown: Map<string, readonly string[]> | undefined;
        for (const rule of this.rules) {
          if (known.has(rule.name)) continue;
          const { truth, unknownFacts } = evaluateRuleCondition(rule.conditions, facts);
          if (truth === 'false' || (truth === 'unknown' && rule.unknown === 'ignore')) continue;
          (unknown ??= new Map()).set(rule.name, truth === 'true' ? [] : unknownFacts);
        }
        const names = [...known, ...(unknown?.keys() ?? [])].sort((a, b) => (this.order.get(a) ?? 0) - (this.order.get(b) ?? 0));
        return { names, unknown: unknown ?? NONE };
      } finally {
        this.active--;
      }
    });
  }
}

let maxConcurrentRuns = 0;

/** The highest number of runs ever in progress at once on one Engine (must be 1). For tests. */
export function maxConcurrentEngineRuns(): number {
  return maxConcurrentRuns;
}

/** A bounded map that forgets the least recently used entry. */
export class LruCache<V> {
  private readonly map = new Map<string, V>();
  constructor(private readonly max: number) {}
  get(key: string): V | undefined {
    const v = this.map.get(key);
    if (v !== undefined) {
      this.map.delete(key);
      this.map.set(key, v);
    }
    return v;
  }
  set(key: string, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    while (this.map.size > this.max) {
      const oldest = this.map.keys().next().value;
      if (oldest === undefined) break;
      this.map.delete(oldest);
    }
  }
  delete(key: string): void {
    this.map.delete(key);
  }
  get size(): number {
    return this.map.size;
  }
}
