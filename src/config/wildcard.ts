/**
 * Model-name patterns with `*` as the only wildcard, compiled once when a snapshot is built.
 * Specificity is the number of literal characters: the "longest match" wins.
 */

/** A compiled pattern. */
export interface WildcardPattern {
  readonly source: string;
  /** Literal characters in the pattern; higher is more specific. */
  readonly specificity: number;
  readonly test: (name: string) => boolean;
}

/** True when the text contains a wildcard. */
export function isWildcard(text: string): boolean {
  return text.includes('*');
}

/** Compiles a pattern; `*` matches any run of characters, including none. */
export function compileWildcard(source: string): WildcardPattern {
  const parts = source.split('*');
  const specificity = source.length - (parts.length - 1);
  if (parts.length === 1) return { source, specificity, test: (name) => name === source };
  if (parts.length === 2) {
    const [prefix = '', suffix = ''] = parts;
    const min = prefix.length + suffix.length;
    return {
      source,
      specificity,
      test: (name) => name.length >= min && name.startsWith(prefix) && name.endsWith(suffix),
    };
  }
  const re = new RegExp('^' + parts.map((p) => p.replace(/[.+?^${}()|[\]\\/]/g, '\\$&')).join('.*') + '$');
  return { source, specificity, test: (name) => re.test(name) };
}

/** Orders patterns so the first match is the longest (most literal characters), ties by source. */
export function bySpecificity(a: WildcardPattern, b: WildcardPattern): number {
  return b.specificity - a.specificity || (a.source < b.source ? -1 : a.source > b.source ? 1 : 0);
}

/** A set of allow-list patterns: exact names in a Set, wildcards in a list. */
export class ModelMatcher {
  private readonly exact: ReadonlySet<string>;
  private readonly patterns: readonly WildcardPattern[];
  /** True when the matcher admits every name (`*` present or no list given). */
  readonly matchesAll: boolean;

  constructor(sources: readonly string[] | undefined) {
    const list = sources ?? ['*'];
    this.matchesAll = list.includes('*');
    this.exact = new Set(list.filter((s) => !isWildcard(s)));
    this.patterns = list.filter(isWildcard).map(compileWildcard).sort(bySpecificity);
  }

  matches(name: string): boolean {
    if (this.matchesAll || this.exact.has(name)) return true;
    for (const p of this.patterns) if (p.test(name)) return true;
    return false;
  }
}
