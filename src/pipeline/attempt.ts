/**
 * Attempt-stage step: the upstream rewrite for one attempt of a planned request, for the target the
 * router chose (its provider's credential, host, path and model name; a discovered endpoint's
 * address; the provider's first-byte timeout).
 */
import { isGatewayError, type GatewayError } from '../errors.js';
import type { Candidate, RequestPlan } from '../routing/plan.js';
import { upstreamRewrite, type UpstreamRewrite } from './rewrite.js';

/** Envoy reads this on the attempt's route: time to the first response byte of this attempt. */
export const PER_TRY_TIMEOUT_HEADER = 'x-envoy-upstream-rq-per-try-timeout-ms';

/**
 * Builds the rewrite for sending `plan`'s request to `candidate`, or the client error when the
 * candidate's provider API cannot take this request (translated providers).
 */
export function attemptRewrite(plan: RequestPlan, candidate: Candidate): UpstreamRewrite | GatewayError | Promise<UpstreamRewrite | GatewayError> {
  const body = plan.body;
  if (!body) throw new Error('attempt after the response was settled');
  const base = upstreamRewrite(candidate.route, plan.operation, body, plan.requestId);
  if (base instanceof Promise) return base.then((b) => withAttemptHeaders(b, candidate));
  return withAttemptHeaders(base, candidate);
}

function withAttemptHeaders(base: UpstreamRewrite | GatewayError, candidate: Candidate): UpstreamRewrite | GatewayError {
  if (isGatewayError(base)) return base;
  const address = candidate.address;
  const setHeaders = address === undefined ? [...base.setHeaders] : base.setHeaders.map(([k, v]) => (k === ':authority' ? ([k, address] as const) : ([k, v] as const)));
  const timeoutMs = candidate.route.provider.firstByteTimeoutMs;
  if (timeoutMs !== undefined) setHeaders.push([PER_TRY_TIMEOUT_HEADER, String(timeoutMs)]);
  return { setHeaders, removeHeaders: base.removeHeaders, body: base.body, ...(base.translation ? { translation: base.translation } : {}) };
}
