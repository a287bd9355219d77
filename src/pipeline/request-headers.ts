/** Request-headers step: route classification and authentication, before any body is buffered. */
import type { Snapshot } from '../config/snapshot.js';
import type { KeyEntry } from '../config/snapshot.js';
import { gatewayError, isGatewayError, type GatewayError } from '../errors.js';
import { hostOf, type Tenant } from '../tenancy/hosts.js';
import { authenticate, extractKey } from './auth.js';
import { checkClientAddress } from './client-address.js';
import { answerModels } from './models-list.js';
import { apiOfRequest, classifyRoute, type ApiRoute } from './route.js';

export type HeadersDecision =
  | { readonly kind: 'continue'; readonly key: KeyEntry; readonly route: ApiRoute & { kind: 'forward' } }
  | { readonly kind: 'respond'; readonly key: KeyEntry; readonly status: number; readonly body: string }
  /** Refused after authentication (an unknown model on GET /v1/models/{model}): the key is known. */
  | { readonly kind: 'refuse'; readonly key: KeyEntry; readonly error: GatewayError }
  /** A request about a stored response (no body to read): src/pipeline/stored-responses.ts. */
  | { readonly kind: 'stored'; readonly key: KeyEntry; readonly route: ApiRoute & { kind: 'stored-response' } }
  | GatewayError;

/**
 * Decides what to do with a request from its headers alone. `tenant` is the tenant of the request's
 * Host in this snapshot (GatewayConfig spec.tenants), if any: /v1/models lists what it maps, in
 * Anthropic's shape for Anthropic's clients (`anthropic-version` sent), else OpenAI's.
 */
export function admitHeaders(headers: ReadonlyMap<string, string>, snapshot: Snapshot, nowMs: number, sourceAddress?: string, tenant?: Tenant): HeadersDecision {
  const route = classifyRoute(headers.get(':method') ?? '', headers.get(':path') ?? '');
  if (isGatewayError(route)) return route;
  const key = authenticate(extractKey(headers.get('authorization'), headers.get('x-api-key')), snapshot, nowMs);
  if (isGatewayError(key)) return key;
  const entry = key;
  // A key bound to other hostnames does not exist on this one: the same 401 as an unknown key.
  if (entry.hosts && !entry.hosts.matches(hostOf(headers.get(':authority')))) return gatewayError('invalid_api_key', 'Incorrect API key provided.');
  const denied = checkClientAddress(entry, sourceAddress);
  if (denied) return denied;
  if (route.kind === 'list-models' || route.kind === 'retrieve-model') {
    const api = apiOfRequest(headers.get(':path') ?? '', headers.get('anthropic-version'));
    const answer = answerModels(route, api, entry, snapshot, tenant);
    if (isGatewayError(answer)) return { kind: 'refuse', key: entry, error: answer };
    return { kind: 'respond', key: entry, status: 200, body: answer.body };
  }
  if (route.kind === 'stored-response') return { kind: 'stored', key: entry, route };
  return { kind: 'continue', key: entry, route };
}
