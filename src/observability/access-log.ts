/** The per-request access log line and request metrics, written once from finalize(). */
import { templateOf, type RequestContext } from '../pipeline/context.js';
import { apiLabel } from '../pipeline/route.js';
import type { StreamOutcome } from '../extproc/stream.js';
import { formatPicos } from '../billing/money.js';
import type { Logger } from './logger.js';
import { requestDurationSeconds, requestsTotal, responseHeadersSeconds, tenantRequestsTotal } from './metrics.js';

const NS_PER_S = 1e9;

/** Records one finished request: a log line (never key or prompt) and metrics. */
export function recordRequest(logger: Logger, ctx: RequestContext, outcome: StreamOutcome): void {
  const endNs = process.hrtime.bigint();
  const durationS = Number(endNs - ctx.startedNs) / NS_PER_S;
  const ttfbS = ctx.responseHeadersNs === undefined ? undefined : Number(ctx.responseHeadersNs - ctx.startedNs) / NS_PER_S;
  const provider = ctx.chosen?.provider.name ?? '-';
  const model = ctx.model ?? '-';
  const status = ctx.status ?? (outcome === 'completed' ? 0 : 499);
  const template = templateOf(ctx);
  requestsTotal.inc({
    consumer: ctx.key?.name ?? '-',
    provider,
    model,
    upstream_model: ctx.chosen?.upstreamModel ?? '-',
    status: String(status),
    api: apiLabel(ctx.route),
  });
  if (ctx.tenant) tenantRequestsTotal.inc({ tenant: ctx.tenant.name, consumer: ctx.key?.name ?? '-', status: String(status) });
  if (ctx.chosen) {
    requestDurationSeconds.observe({ provider, model }, durationS);
    if (ttfbS !== undefined) responseHeadersSeconds.observe({ provider, model }, ttfbS);
  }
  logger.info(
    {
      requestId: ctx.requestId,
      consumer: ctx.key?.name,
      requestedModel: ctx.requestedModel,
      model: ctx.model,
      upstreamModel: ctx.chosen?.upstreamModel,
      provider: ctx.chosen?.provider.name,
      api: apiLabel(ctx.route),
      stream: ctx.stream,
      attempts: ctx.attempts,
      status,
      error: ctx.errorCode,
      outcome,
      ttfbMs: ttfbS === undefined ? undefined : Math.round(ttfbS * 1e4) / 10,
      durationMs: Math.round(durationS * 1e4) / 10,
      promptTokens: ctx.billed?.promptTokens,
      completionTokens: ctx.billed?.completionTokens,
      // Exact decimal of the gateway currency (ctx.snapshot.currency), e.g. "0.000135".
      cost: ctx.billed ? formatPicos(ctx.billed.costPicos) : undefined,
      configVersion: ctx.snapshot.version,
      tenant: ctx.tenant?.name,
      // POST /v1/templates/<name>: the template and the version label it had in this request's config.
      template: template?.name,
      templateVersion: template?.version,
    },
    'request',
  );
}
