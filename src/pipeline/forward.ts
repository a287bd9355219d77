/**
 * Request-body step: read the body, resolve the model, open the routing plan (candidate providers,
 * failover) and hand the request to the attempt stage, where each attempt is rewritten. A request
 * with a single target is rewritten here and goes straight to its provider (RequestPlan.direct).
 */
import { isGatewayError, type GatewayError } from '../errors.js';
import type { ResilientRouter } from '../routing/router.js';
import type { RequestContext } from './context.js';
import { directRewrite, dispatchRewrite } from './dispatch.js';
import { resolveForKey } from './model.js';
import { readRequestBody, type RequestBody } from './request-body.js';
import type { UpstreamRewrite } from './rewrite.js';

/**
 * Plans the upstream attempts for a buffered body, recording what it learns on `ctx`.
 * Returns the rewrite, or the error the client should get.
 */
export function planForward(
  ctx: RequestContext,
  raw: Buffer,
  contentType: string | undefined,
  router: ResilientRouter,
  /** Limits step hook: may return the body with `stream_options` added (pipeline/limits.ts). */
  prepare?: (ctx: RequestContext, body: RequestBody) => RequestBody,
  /** Guardrail step hook: may refuse the request or return it with text masked (src/guardrails/step.ts). */
  guard?: (ctx: RequestContext, body: RequestBody) => RequestBody | GatewayError,
): UpstreamRewrite | GatewayError {
  const { key, route } = ctx;
  if (!key || route?.kind !== 'forward') throw new Error('planForward called before admission');
  const read = readRequestBody(raw, contentType);
  if (isGatewayError(read)) return read;
  let body = read;
  ctx.requestedModel = body.model;
  ctx.stream = body.stream;
  ctx.body = body;
  const resolved = resolveForKey(body.model, key, ctx.snapshot);
  if (isGatewayError(resolved)) return resolved;
  ctx.model = resolved.model;
  if (guard) {
    const guarded = guard(ctx, body);
    if (isGatewayError(guarded)) return guarded;
    body = guarded;
    ctx.body = body;
  }
  if (prepare) body = prepare(ctx, body);
  const plan = router.open({
    requestId: ctx.requestId,
    model: resolved.model,
    operation: route.operation,
    body,
    tiers: resolved.tiers,
    config: ctx.snapshot.resilience,
  });
  if (isGatewayError(plan)) return plan;
  ctx.planId = plan.id;
  if (!plan.direct) return dispatchRewrite(plan);
  // One target: no attempt stage, no choice to make.
  const choice = router.beginDirect(plan);
  ctx.attempt = choice.attempt;
  return directRewrite(plan, choice.attempt.candidate);
}
