/** GET /v1/models: the models this key may use, after mapping, in OpenAI's list shape. */
import type { KeyEntry, Snapshot } from '../config/snapshot.js';

/** Served models the key may use, plus exact aliases (per key and global) that lead to one. */
export function listModelsForKey(key: KeyEntry, snapshot: Snapshot): string[] {
  const names = new Set<string>();
  for (const model of snapshot.servedModels) if (key.allowedModels.matches(model)) names.add(model);
  for (const mapping of [snapshot.globalMapping, key.mapping]) {
    for (const alias of mapping.exactEntries().keys()) {
      const target = key.mapping.lookup(alias) ?? snapshot.globalMapping.lookup(alias) ?? alias;
      if (names.has(target) || (snapshot.routesByModel.has(target) && key.allowedModels.matches(target))) names.add(alias);
    }
  }
  return [...names].sort();
}

/** The JSON body OpenAI's client expects from /v1/models. */
export function modelsListBody(models: readonly string[], createdSeconds: number): string {
  return JSON.stringify({
    object: 'list',
    data: models.map((id) => ({ id, object: 'model', created: createdSeconds, owned_by: 'tollgate' })),
  });
}
