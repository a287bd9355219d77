/**
 * Model mapping compiled into the snapshot: exact entries in a Map (O(1)), then wildcard entries in
 * specificity order (longest match first). Results of wildcard lookups are memoised per mapping in
 * a bounded cache; the mapping is immutable, so the cache can never go stale.
 */
import { bySpecificity, compileWildcard, isWildcard, type WildcardPattern } from './wildcard.js';

const CACHE_LIMIT = 4096;
const NO_MATCH = '';

/** A compiled model mapping. */
export class ModelMapping {
  private readonly exact: ReadonlyMap<string, string>;
  private readonly wildcards: readonly (WildcardPattern & { readonly target: string })[];
  private readonly cache = new Map<string, string>();

  constructor(entries: Readonly<Record<string, string>> | undefined) {
    const exact = new Map<string, string>();
    const wildcards: (WildcardPattern & { readonly target: string })[] = [];
    for (const [from, to] of Object.entries(entries ?? {})) {
      if (isWildcard(from)) wildcards.push({ ...compileWildcard(from), target: to });
      else exact.set(from, to);
    }
    this.exact = exact;
    this.wildcards = wildcards.sort(bySpecificity);
  }

  /** Entries without wildcards, for listing aliases in /v1/models. */
  exactEntries(): ReadonlyMap<string, string> {
    return this.exact;
  }

  get isEmpty(): boolean {
    return this.exact.size === 0 && this.wildcards.length === 0;
  }

  /** The mapped name, or undefined when no entry matches. */
  lookup(model: string): string | undefined {
    const hit = this.exact.get(model);
    if (hit !== undefined) return hit;
    if (this.wildcards.length === 0) return undefined;
    const cached = this.cache.get(model);
    if (cached !== undefined) return cached === NO_MATCH ? undefined : cached;
    let result: string | undefined;
    for (const w of this.wildcards) {
      if (w.test(model)) {
        result = w.target;
        break;
      }
    }
    // Bounded: clients choose model names, so an unbounded cache would be a memory leak on demand.
    if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
    this.cache.set(model, result ?? NO_MATCH);
    return result;
  }
}

/** Per-key mapping first, then the global one; unmatched names pass unchanged. */
export function resolveModel(model: string, perKey: ModelMapping, global: ModelMapping): string {
  return perKey.lookup(model) ?? global.lookup(model) ?? model;
}
