/**
 * Per-key safety settings derived from a key's chain (the key, then its ancestors): the IP
 * allow-lists that all apply, and the guardrails referenced anywhere in the chain. Computed with the
 * key's entry when the snapshot is built (also incrementally), so a request does no work for them.
 */
import { qualifiedName, type ApiKey } from '../config/types.js';
import { AllowList, CidrSet, parseCidr, type CidrRange } from './cidr.js';

const NO_NAMES: readonly string[] = Object.freeze([]);

/** Compiles a list of CIDRs; an entry that does not parse allows nothing (fail closed). */
function cidrSet(list: readonly string[]): CidrSet {
  const ranges: CidrRange[] = [];
  for (const text of list) {
    const r = parseCidr(text);
    if (typeof r !== 'string') ranges.push(r);
  }
  return new CidrSet(ranges);
}

/** The allow-list of a chain (self first): one level per key that has `allowedCidrs`; undefined when none. */
export function allowListOf(chain: readonly ApiKey[]): AllowList | undefined {
  const levels: { owner: string; set: CidrSet }[] = [];
  for (const k of chain) if (k.spec.allowedCidrs !== undefined) levels.push({ owner: qualifiedName(k.metadata), set: cidrSet(k.spec.allowedCidrs) });
  return levels.length > 0 ? new AllowList(levels) : undefined;
}

/** Guardrail names referenced by a chain (self first), without duplicates, in that order. */
export function guardrailNamesOf(chain: readonly ApiKey[]): readonly string[] {
  let out: string[] | undefined;
  for (const k of chain) {
    for (const g of k.spec.guardrails ?? []) {
      out ??= [];
      if (!out.includes(g)) out.push(g);
    }
  }
  return out ?? NO_NAMES;
}
