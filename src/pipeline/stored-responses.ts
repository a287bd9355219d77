/**
 * Requests about stored Responses API responses: `GET /v1/responses/{id}`, `DELETE ...`,
 * `GET .../input_items`, `POST .../cancel`, and `previous_response_id` on create. Each must reach the
 * provider (and upstream model) that created the response, which the response directory
 * (src/responses/directory.ts) recorded; a key may only touch responses of its own consumer or of a
 * key under its account (everything else is an unknown id: 404, as OpenAI answers).
 */
import type { KeyEntry, ModelRoute, RouteTier, Snapshot } from '../config/snapshot.js';
import { gatewayError, type GatewayError } from '../errors.js';
import { adapterFor } from '../providers/registry.js';
import { CREDENTIAL_HEADERS } from '../providers/types.js';
import { DIRECTORY_UNAVAILABLE, mayAccess, type ResponseDirectory, type StoredResponse } from '../responses/directory.js';
import { PER_TRY_TIMEOUT_HEADER } from './attempt.js';
import { ENVOY_CONTROL_HEADERS } from './dispatch.js';
import { ROUTE_HEADER, type UpstreamRewrite } from './rewrite.js';
import type { StoredAction } from './route.js';

/** A stored response the key may touch, with the route that reaches it. */
export interface StoredTarget {
  readonly entry: StoredResponse;
  readonly route: ModelRoute;
}

export function notFound(id: string, previous = false): GatewayError {
  return gatewayError('response_not_found', `${previous ? 'Previous response' : 'Response'} with id '${id}' not found.`);
}

/**
 * Looks `id` up for `key`: unknown, expired and other consumers' responses are all the same 404 (a
 * key learns nothing about responses it may not touch).
 */
export async function lookupStored(directory: ResponseDirectory, id: string, key: KeyEntry, previous = false): Promise<StoredResponse | GatewayError> {
  const entry = await directory.get(id);
  if (entry === DIRECTORY_UNAVAILABLE) return gatewayError('response_store_unavailable', 'The gateway cannot reach its directory of stored responses right now; retry shortly.');
  if (!entry || !mayAccess(key, entry)) return notFound(id, previous);
  return entry;
}

/**
 * The route of the provider and upstream model that created `entry`: under its model's routes, else
 * under any model (the mapping may have changed since). Undefined when no served model reaches that
 * provider and model any more.
 */
export function routeOf(snapshot: Snapshot, entry: StoredResponse): ModelRoute | undefined {
  const same = (r: ModelRoute): boolean => r.provider.name === entry.provider && r.upstreamModel === entry.upstreamModel;
  for (const tier of snapshot.routesByModel.get(entry.model) ?? []) for (const r of tier.routes) if (same(r)) return r;
  for (const tiers of snapshot.routesByModel.values()) for (const tier of tiers) for (const r of tier.routes) if (same(r)) return r;
  return undefined;
}

const SUFFIX: Readonly<Record<StoredAction, string>> = { retrieve: '', delete: '', input_items: '/input_items', cancel: '/cancel' };

/**
 * The provider path of a stored-response request: the provider's Responses path (`<base>/responses`,
 * Azure's `/openai/responses?api-version=...`) with `/{id}` and the action's suffix inserted before
 * its query, and the client's query (pagination, `include[]`, `stream`) appended.
 */
export function storedPath(responsesPath: string, id: string, action: StoredAction, clientQuery: string): string {
  const q = responsesPath.indexOf('?');
  const base = q < 0 ? responsesPath : responsesPath.slice(0, q);
  const own = q < 0 ? '' : responsesPath.slice(q + 1);
  const client = clientQuery.startsWith('?') ? clientQuery.slice(1) : clientQuery;
  const query = [own, client].filter((p) => p.length > 0).join('&');
  return `${base}/${encodeURIComponent(id)}${SUFFIX[action]}${query ? `?${query}` : ''}`;
}

const NEVER_FROM_CLIENT: readonly string[] = [...new Set([...CREDENTIAL_HEADERS, ...ENVOY_CONTROL_HEADERS])];

/**
 * Headers that send a stored-response request straight to `route`'s provider (the request stage's
 * direct path: no body, no attempt stage, Envoy retries the same provider on 5xx and resets).
 */
export function storedRewrite(route: ModelRoute, id: string, action: StoredAction, clientQuery: string, requestId: string, maxAttempts: number): UpstreamRewrite {
  const target = adapterFor(route.provider.type).target(route.provider, 'responses', route.upstreamModel, false);
  const setHeaders: (readonly [string, string])[] = [
    [':authority', target.authority],
    [':path', storedPath(target.path, id, action, clientQuery)],
    [ROUTE_HEADER, target.scheme],
    ['x-request-id', requestId],
    ['x-envoy-max-retries', String(Math.max(0, maxAttempts - 1))],
    ...target.headers,
  ];
  const timeoutMs = route.provider.firstByteTimeoutMs;
  if (timeoutMs !== undefined) setHeaders.push([PER_TRY_TIMEOUT_HEADER, String(timeoutMs)]);
  const removeHeaders = NEVER_FROM_CLIENT.filter((h) => !setHeaders.some(([name]) => name === h));
  return { setHeaders, removeHeaders, body: undefined };
}

/**
 * `previous_response_id` on create: the model's routes narrowed to the provider that stored the
 * previous response. With `store: false` the client carries its state itself, so the other routes
 * stay as failover behind the pinned provider's (first). Undefined when that provider does not
 * serve the requested model.
 */
export function pinTiers(tiers: readonly RouteTier[], entry: StoredResponse, store: boolean): readonly RouteTier[] | undefined {
  const pinned = tiers.flatMap((t) => t.routes.filter((r) => r.provider.name === entry.provider));
  if (pinned.length === 0) return undefined;
  const first: RouteTier = { priority: Number.MIN_SAFE_INTEGER, routes: pinned, totalWeight: pinned.reduce((s, r) => s + r.provider.weight, 0) };
  if (store) return [first];
  const rest: RouteTier[] = [];
  for (const t of tiers) {
    const others = t.routes.filter((r) => r.provider.name !== entry.provider);
    if (others.length > 0) rest.push({ priority: t.priority, routes: others, totalWeight: others.reduce((s, r) => s + r.provider.weight, 0) });
  }
  return [first, ...rest];
}
