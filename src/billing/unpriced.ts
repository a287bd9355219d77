/**
 * Requests served by a model that has no price: they cost 0, so they are free in reports and do not
 * count against money budgets. That must not stay silent: every such request counts in
 * tollgate_unpriced_requests_total{model,provider}, and the first one of each model logs a warning
 * saying how to price it (once per model and process; the set of models warned about is bounded).
 */
import type { Logger } from '../observability/logger.js';
import { unpricedRequestsTotal } from '../observability/metrics.js';

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
