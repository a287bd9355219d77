/** Model resolution: mapping (per key, then global), allow-list, then the routes that serve it. */
import { resolveModel, type ModelMapping } from '../config/mapping.js';
import type { KeyEntry, RouteTier, Snapshot } from '../config/snapshot.js';
import { gatewayError, type GatewayError } from '../errors.js';

export interface ResolvedModel {
  /** Name after mapping. */
  readonly model: string;
  readonly tiers: readonly RouteTier[];
}

/**
 * A name that no provider serves (after mapping) is unknown: 404 `model_not_found`, as OpenAI
 * answers, before the allow-list is looked at, so a typo is not reported as a permission problem.
 * A served model the key may not use is 403 `model_not_allowed`. The allow-list applies to the name
 * after mapping: that is what is served and paid for, so an alias can never widen what a key may
 * reach.
 */
export function resolveForKey(requested: string, key: KeyEntry, snapshot: Snapshot, tenantMapping?: ModelMapping): ResolvedModel | GatewayError {
  // A tenant's mapping (its Host, src/tenancy/hosts.ts) replaces the global one.
  const model = resolveModel(requested, key.mapping, tenantMapping ?? snapshot.globalMapping);
  const shown = model === requested ? `'${requested}'` : `'${requested}' (mapped to '${model}')`;
  const tiers = snapshot.routesByModel.get(model);
  if (!tiers) return gatewayError('model_not_found', `The model ${shown} does not exist or you do not have access to it.`);
  if (!key.allowedModels.matches(model)) {
    return gatewayError('model_not_allowed', `This API key is not allowed to use the model ${shown}.`);
  }
  return { model, tiers };
}
