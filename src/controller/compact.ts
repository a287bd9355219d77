/**
 * The transform applied to every object before it reaches the snapshot builder (client-go's
 * `SetTransform`): keep only what the builder reads. A server-side-applied ApiKey carries
 * `managedFields` and often the `last-applied-configuration` annotation (a second copy of the
 * spec): together several times the size of the spec. uid, resourceVersion, generation and status
 * are kept by the informer cache in its own compact entry (slim-informer.ts), not here. Strings that
 * repeat across 100k objects (namespace, creation timestamps of objects created in bulk) are shared.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import { compactKeySpec } from '../config/parse.js';

const strings = new Map<string, string>();
const STRING_LIMIT = 50_000;

/** One shared copy of a repeated short string (bounded; past the limit it starts over). */
export function shareString(s: string): string {
  if (s.length > 256) return s;
  const hit = strings.get(s);
  if (hit !== undefined) return hit;
  if (strings.size >= STRING_LIMIT) strings.clear();
  strings.set(s, s);
  return s;
}

/** A deep copy with every string shared (namespace, timestamps, labels). */
function shareDeep(v: unknown): unknown {
  if (typeof v === 'string') return shareString(v);
  if (Array.isArray(v)) return v.map(shareDeep);
  if (typeof v === 'object' && v !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = shareDeep(x);
    return out;
  }
  return v;
}

/** Metadata fields the builder reads; everything else (managedFields, annotations, uid, ...) is dropped. */
const META_FIELDS = ['name', 'namespace', 'creationTimestamp', 'labels'] as const;

export function compactObject<T extends KubernetesObject>(obj: T): T {
  const source = obj as unknown as Record<string, unknown>;
  const meta = (obj.metadata ?? {}) as Record<string, unknown>;
  const metadata: Record<string, unknown> = {};
  for (const f of META_FIELDS) {
    const v = meta[f];
    if (v === undefined || v === null) continue;
    // creationTimestamp arrives as a Date from typed clients and as a string from watches.
    metadata[f] = v instanceof Date ? shareString(v.toISOString().replace(/\.\d+Z$/, 'Z')) : f === 'name' ? v : shareDeep(v);
  }
  const out: Record<string, unknown> = { metadata };
  if (source['apiVersion'] !== undefined) out['apiVersion'] = shareString(String(source['apiVersion']));
  if (source['kind'] !== undefined) out['kind'] = shareString(String(source['kind']));
  for (const field of ['spec', 'data', 'type'] as const) if (source[field] !== undefined) out[field] = source[field];
  // ApiKey specs share their common parts (models, limits) across the 100k cached objects.
  if (out['kind'] === 'ApiKey' && out['spec'] !== undefined) out['spec'] = compactKeySpec(out['spec']);
  return out as unknown as T;
}
