/** Which API a request addresses, from method and path. */
import { gatewayError, type GatewayError } from '../errors.js';
import type { Operation } from '../providers/types.js';

export type ApiRoute =
  | { readonly kind: 'forward'; readonly operation: Operation }
  | { readonly kind: 'list-models' };

const ROUTES: ReadonlyMap<string, { readonly method: string; readonly route: ApiRoute }> = new Map([
  ['/v1/chat/completions', { method: 'POST', route: { kind: 'forward', operation: 'chat/completions' } }],
  ['/v1/embeddings', { method: 'POST', route: { kind: 'forward', operation: 'embeddings' } }],
  ['/v1/models', { method: 'GET', route: { kind: 'list-models' } }],
] as const);

/** Classifies a request; unknown paths and wrong methods are client errors. */
export function classifyRoute(method: string, rawPath: string): ApiRoute | GatewayError {
  const q = rawPath.indexOf('?');
  let path = q === -1 ? rawPath : rawPath.slice(0, q);
  if (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1);
  const entry = ROUTES.get(path);
  if (!entry) return gatewayError('unknown_url', `Unknown request URL: ${method} ${path}. Supported: POST /v1/chat/completions, POST /v1/embeddings, GET /v1/models.`);
  if (method !== entry.method) return gatewayError('method_not_allowed', `Method ${method} is not allowed on ${path}; use ${entry.method}.`);
  return entry.route;
}
