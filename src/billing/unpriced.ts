/**
 * Requests served by a model that has no price: they cost 0, so they are free in reports and do not
 * count against money budgets. That must not stay silent: every such request counts in
 * tollgate_unpriced_requests_total{model,provider}, and the first one of each model logs a warning
 * saying how to price it (once per model and process; the set of models warned about is bounded).
 * Before any traffic, every configuration in force is checked too: tollgate_unpriced_models{model}
 * is 1 for each served model priced nowhere, and a change of that set is logged.
 */
import type { ConfigStore } from '../config/store.js';
import type { Snapshot } from '../config/snapshot.js';
import type { Logger } from '../observability/logger.js';
import { unpricedModels, unpricedRequestsTotal } from '../observability/metrics.js';

/** Models warned about at most (a warning per model; beyond it only the metric counts). */
const MAX_WARNED = 1000;

export class UnpricedRequests {
  private readonly warned = new Set<string>();

  constructor(private readonly logger: Logger) {}

  /** One request that reached `provider` for `model` (the served name) with no price. */
  note(model: string, upstreamModel: string, provider: string): void {
    unpricedRequestsTotal.inc({ model, provider });
    if (this.warned.has(model) || this.warned.size >= MAX_WARNED) return;
    this.warned.add(model);
    this.logger.warn(
      { model, upstreamModel, provider },
      'model has no price: its requests cost 0 and do not count against money budgets; set models[].pricing on the ModelProvider or a GatewayConfig pricing.models entry (counted in tollgate_unpriced_requests_total; this warning is logged once per model)',
    );
  }
}

/** Served models with no price on any of their routes (sorted). Pure. */
export function unpricedModelsOf(snapshot: Snapshot): string[] {
  return [...snapshot.routesByModel.keys()].filter((m) => !snapshot.admissionPrice.has(m)).sort();
}

/**
 * Keeps tollgate_unpriced_models in step with the configuration in force and logs when the set of
 * unpriced models changes (at start and on a config change, never per request). Returns the
 * unsubscribe function.
 */
export function watchUnpricedModels(store: ConfigStore, logger: Logger): () => void {
  let last = '';
  const check = (snapshot: Snapshot | undefined): void => {
    if (!snapshot) return;
    const models = unpricedModelsOf(snapshot);
    const id = models.join('\u0000');
    if (id === last) return;
    last = id;
    unpricedModels.reset();
    for (const model of models) unpricedModels.set({ model }, 1);
    if (models.length > 0) {
      logger.info(
        { models: models.slice(0, 50), count: models.length },
        'served models without a price (their requests cost 0 and do not count against money budgets; tollgate_unpriced_models)',
      );
    }
  };
  check(store.current());
  return store.onSwap(check);
}
