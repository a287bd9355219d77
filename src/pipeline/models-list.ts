/**
 * GET /v1/models: the models this key may use on this host, in OpenAI's list shape. The candidates
 * and their resolution through the host's mapping (its tenant's, else the global one) are precomputed
 * per snapshot (src/config/model-lists.ts); here only the key's allow-list filters them, and a key's
 * own mapping (which comes first for every name, as in chat) re-resolves the same candidates.
 */
import { catalogFor } from '../config/model-lists.js';
import type { KeyEntry, Snapshot } from '../config/snapshot.js';
import type { Tenant } from '../tenancy/hosts.js';

/**
 * Names a chat request by this key on this host would accept, sorted: each resolves (key mapping,
 * then the tenant's or global mapping) to a served model the key's allow-list admits, exactly as
 * resolveForKey decides (src/pipeline/model.ts). Names reachable only through wildcard patterns are
 * not enumerable and not listed.
 */
export function listModelsForKey(key: KeyEntry, snapshot: Snapshot, tenant?: Tenant): string[] {
  const catalog = catalogFor(snapshot.modelLists, tenant);
  const out: string[] = [];
  if (key.mapping.isEmpty) {
    for (const m of catalog.routable) if (key.allowedModels.matches(m.target)) out.push(m.name);
    return out;
  }
  const names = new Set(catalog.candidates);
  for (const alias of key.mapping.exactEntries().keys()) names.add(alias);
  for (const name of names) {
    const target = key.mapping.lookup(name) ?? catalog.mapping.lookup(name) ?? name;
    if (snapshot.routesByModel.has(target) && key.allowedModels.matches(target)) out.push(name);
  }
  return out.sort();
}

/** The JSON body OpenAI's client expects from /v1/models. */
export function modelsListBody(models: readonly string[], createdSeconds: number): string {
  return JSON.stringify({
    object: 'list',
    data: models.map((id) => ({ id, object: 'model', created: createdSeconds, owned_by: 'tollgate' })),
  });
}
