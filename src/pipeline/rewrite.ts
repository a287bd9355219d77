/**
 * The upstream rewrite for one attempt: where to send it, with which credential, and the body with
 * the provider's model name. Headers the gateway owns are always overwritten, never trusted.
 */
import type { ModelRoute } from '../config/snapshot.js';
import { adapterFor } from '../providers/registry.js';
import { CREDENTIAL_HEADERS, type Operation } from '../providers/types.js';
import { replaceTopLevelString } from './json-patch.js';
import type { RequestBody } from './request-body.js';

/** Header that selects Envoy's upstream cluster (see envoy/envoy.yaml). */
export const ROUTE_HEADER = 'x-tollgate-route';

export interface UpstreamRewrite {
  readonly setHeaders: readonly (readonly [string, string])[];
  readonly removeHeaders: readonly string[];
  /** Replacement body, or undefined when the body goes upstream unchanged. */
  readonly body: Buffer | undefined;
}

/** Builds the rewrite for sending `body` to `route`. */
export function buildRewrite(route: ModelRoute, operation: Operation, body: RequestBody, requestId: string): UpstreamRewrite {
  const target = adapterFor(route.provider.type).target(route.provider, operation, route.upstreamModel);
  const newBody =
    route.upstreamModel !== body.model
      ? replaceTopLevelString(body.raw, body.json, 'model', route.upstreamModel)
      : body.rewritten
        ? body.raw
        : undefined;
  const setHeaders: (readonly [string, string])[] = [
    [':authority', target.authority],
    [':path', target.path],
    [ROUTE_HEADER, target.scheme],
    ['x-request-id', requestId],
    ...target.headers,
  ];
  if (newBody) setHeaders.push(['content-length', String(newBody.length)]);
  const owned = new Set(target.headers.map(([name]) => name));
  return { setHeaders, removeHeaders: CREDENTIAL_HEADERS.filter((h) => !owned.has(h)), body: newBody };
}
