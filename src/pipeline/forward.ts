/** Request-body step: read the body, resolve the model, choose a provider, build the rewrite. */
import { isGatewayError, type GatewayError } from '../errors.js';
import type { RequestContext } from './context.js';
import { resolveForKey } from './model.js';
import { readRequestBody } from './request-body.js';
import { buildRewrite, type UpstreamRewrite } from './rewrite.js';
import { chooseRoute } from './routing.js';

/**
 * Plans the upstream attempt for a buffered body, recording what it learns on `ctx`.
 * Returns the rewrite, or the error the client should get.
 */
export function planForward(ctx: RequestContext, raw: Buffer, contentType: string | undefined): UpstreamRewrite | GatewayError {
  const { key, route } = ctx;
  if (!key || route?.kind !== 'forward') throw new Error('planForward called before admission');
  const body = readRequestBody(raw, contentType);
  if (isGatewayError(body)) return body;
  ctx.requestedModel = body.model;
  ctx.stream = body.stream;
  const resolved = resolveForKey(body.model, key, ctx.snapshot);
  if (isGatewayError(resolved)) return resolved;
  ctx.model = resolved.model;
  const chosen = chooseRoute(resolved.tiers);
  if (isGatewayError(chosen)) return chosen;
  ctx.chosen = chosen;
  return buildRewrite(chosen, route.operation, body, ctx.requestId);
}
