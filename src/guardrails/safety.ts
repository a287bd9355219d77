/**
 * The safety part of a snapshot: per-key IP allow-lists (with their ancestors' lists) and, per key,
 * the guardrails that apply, all compiled once when the snapshot is built so a request does map
 * lookups only.
 */
import { qualifiedName, type ApiKey, type ResourceSet } from '../config/types.js';
import { AllowList, CidrSet, parseCidr, type CidrRange } from './cidr.js';

/** What the hot path reads. */
export interface SafetyIndex {
  /** Key name (`namespace/name`) -> its allow-list chain; absent when no level has a list. */
  readonly allowLists: ReadonlyMap<string, AllowList>;
}

/** The key itself first, then its ancestors (same namespace), stopping at a missing parent or a loop. */
export function ancestry(key: ApiKey, byName: ReadonlyMap<string, ApiKey>, maxDepth = 16): ApiKey[] {
  const namespace = key.metadata.namespace ?? 'default';
  const chain: ApiKey[] = [key];
  const seen = new Set<string>([qualifiedName(key.metadata)]);
  for (let cur = key; cur.spec.parent !== undefined && chain.length < maxDepth; ) {
    const name = `${namespace}/${cur.spec.parent}`;
    const parent = byName.get(name);
    if (!parent || seen.has(name)) break;
    seen.add(name);
    chain.push(parent);
    cur = parent;
  }
  return chain;
}

/** Compiles a list of CIDRs; an entry that does not parse allows nothing (fail closed). */
function cidrSet(list: readonly string[]): CidrSet {
  const ranges: CidrRange[] = [];
  for (const text of list) {
    const r = parseCidr(text);
    if (typeof r !== 'string') ranges.push(r);
  }
  return new CidrSet(ranges);
}

/** Builds the safety index from the user's resources. Pure. */
export function buildSafety(resources: ResourceSet): SafetyIndex {
  const byName = new Map<string, ApiKey>();
  for (const k of resources.apiKeys) byName.set(qualifiedName(k.metadata), k);
  const allowLists = new Map<string, AllowList>();
  const compiled = new Map<string, CidrSet>();
  for (const key of resources.apiKeys) {
    if (key.spec.accountOnly) continue;
    const levels: { owner: string; set: CidrSet }[] = [];
    for (const level of ancestry(key, byName)) {
      const list = level.spec.allowedCidrs;
      if (list === undefined) continue;
      const owner = qualifiedName(level.metadata);
      let set = compiled.get(owner);
      if (!set) {
        set = cidrSet(list);
        compiled.set(owner, set);
      }
      levels.push({ owner, set });
    }
    if (levels.length > 0) allowLists.set(qualifiedName(key.metadata), new AllowList(levels));
  }
  return { allowLists };
}

export const EMPTY_SAFETY: SafetyIndex = { allowLists: new Map() };
