/**
 * Request-stage step: hand a planned request to Envoy's retry machinery. The request goes to the
 * attempt cluster with the plan id and the attempt limit; the client's credential and any
 * Envoy control headers the client sent are removed, so clients cannot steer retries or timeouts.
 */
import { isGatewayError } from '../errors.js';
import { CREDENTIAL_HEADERS } from '../providers/types.js';
import { PLAN_HEADER, type Candidate, type RequestPlan } from '../routing/plan.js';
import { attemptRewrite } from './attempt.js';
import { ROUTE_HEADER, type UpstreamRewrite } from './rewrite.js';

/** Route value that selects the attempt cluster (envoy/envoy.yaml). */
export const ATTEMPT_ROUTE = 'attempt';

/** Envoy headers that change retries or timeouts: only the gateway may set them. */
export const ENVOY_CONTROL_HEADERS: readonly string[] = [
  'x-envoy-retry-on',
  'x-envoy-retry-grpc-on',
  'x-envoy-retriable-status-codes',
  'x-envoy-retriable-header-names',
  'x-envoy-upstream-rq-timeout-ms',
  'x-envoy-upstream-rq-per-try-timeout-ms',
  'x-envoy-hedge-on-per-try-timeout',
  'x-envoy-upstream-rq-timeout-alt-response',
  'x-envoy-expected-rq-timeout-ms',
  'x-envoy-upstream-stream-duration-ms',
];

/** Headers for the request stage's answer: into the attempt cluster, at most `maxAttempts` tries. */
export function dispatchRewrite(plan: RequestPlan): UpstreamRewrite {
  return {
    setHeaders: [
      [ROUTE_HEADER, ATTEMPT_ROUTE],
      [PLAN_HEADER, plan.id],
      ['x-envoy-max-retries', String(Math.max(0, plan.config.maxAttempts - 1))],
      ['x-request-id', plan.requestId],
    ],
    removeHeaders: [...CREDENTIAL_HEADERS, ...ENVOY_CONTROL_HEADERS],
    body: undefined,
  };
}

/**
 * Headers and body for a direct request (one target, RequestPlan.direct): the request stage sends it
 * to the provider itself, with the attempt limit for Envoy's retries to that same target.
 */
export function directRewrite(plan: RequestPlan, candidate: Candidate): UpstreamRewrite {
  const attempt = attemptRewrite(plan, candidate);
  // Translated providers always go through the attempt stage (ResilientRouter.open).
  if (attempt instanceof Promise || isGatewayError(attempt) || attempt.translation) throw new Error(`direct request to a translated provider (${candidate.id})`);
  const setHeaders = [...attempt.setHeaders, ['x-envoy-max-retries', String(Math.max(0, plan.config.maxAttempts - 1))] as const];
  // Everything the client may not send upstream, minus what this rewrite sets (the provider's own
  // credential header, the per-try timeout).
  const removeHeaders = NEVER_FROM_CLIENT.filter((h) => !setHeaders.some(([name]) => name === h));
  return { setHeaders, removeHeaders, body: attempt.body };
}

const NEVER_FROM_CLIENT: readonly string[] = [...new Set([...CREDENTIAL_HEADERS, ...ENVOY_CONTROL_HEADERS])];
