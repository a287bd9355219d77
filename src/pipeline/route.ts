/** Which API a request addresses, from method and path. */
import { gatewayError, type ClientApi, type GatewayError } from '../errors.js';
import type { Operation } from '../providers/types.js';

export type ApiRoute =
  | {
      readonly kind: 'forward';
      readonly operation: Operation;
      /** POST /v1/templates/<name>: the PromptTemplate (in the key's namespace) rendered into a chat completion. */
      readonly template?: string;
    }
  | { readonly kind: 'list-models' };

const ROUTES: ReadonlyMap<string, { readonly method: string; readonly route: ApiRoute }> = new Map([
  ['/v1/chat/completions', { method: 'POST', route: { kind: 'forward', operation: 'chat/completions' } }],
  ['/v1/embeddings', { method: 'POST', route: { kind: 'forward', operation: 'embeddings' } }],
  ['/v1/messages', { method: 'POST', route: { kind: 'forward', operation: 'messages' } }],
  ['/v1/messages/count_tokens', { method: 'POST', route: { kind: 'forward', operation: 'messages/count_tokens' } }],
  ['/v1/responses', { method: 'POST', route: { kind: 'forward', operation: 'responses' } }],
  ['/v1/models', { method: 'GET', route: { kind: 'list-models' } }],
] as const);

const SUPPORTED = 'POST /v1/chat/completions, POST /v1/embeddings, POST /v1/responses, POST /v1/messages, POST /v1/messages/count_tokens, POST /v1/templates/<name>, GET /v1/models';

const TEMPLATES_PREFIX = '/v1/templates/';
/** A PromptTemplate name (a Kubernetes object name). */
const TEMPLATE_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

function pathOf(rawPath: string): string {
  const q = rawPath.indexOf('?');
  const path = q === -1 ? rawPath : rawPath.slice(0, q);
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
}

/** Classifies a request; unknown paths and wrong methods are client errors. */
export function classifyRoute(method: string, rawPath: string): ApiRoute | GatewayError {
  const path = pathOf(rawPath);
  if (path.startsWith(TEMPLATES_PREFIX)) {
    const name = path.slice(TEMPLATES_PREFIX.length);
    if (!TEMPLATE_NAME.test(name)) return gatewayError('unknown_url', `Unknown request URL: ${method} ${path}. A template URL is POST /v1/templates/<name>, <name> a PromptTemplate name.`);
    if (method !== 'POST') return gatewayError('method_not_allowed', `Method ${method} is not allowed on ${path}; use POST.`);
    return { kind: 'forward', operation: 'chat/completions', template: name };
  }
  const entry = ROUTES.get(path);
  if (!entry) return gatewayError('unknown_url', `Unknown request URL: ${method} ${path}. Supported: ${SUPPORTED}.`);
  if (method !== entry.method) return gatewayError('method_not_allowed', `Method ${method} is not allowed on ${path}; use ${entry.method}.`);
  return entry.route;
}

/** The client API of an operation: Anthropic's for the Messages front door, OpenAI's otherwise. */
export function apiOf(operation: Operation): ClientApi {
  return operation === 'messages' || operation === 'messages/count_tokens' ? 'anthropic' : 'openai';
}

/**
 * The client API a request path speaks, known before the request is classified or authenticated, so
 * that even an unknown URL or a missing key under /v1/messages is answered in Anthropic's shape.
 */
export function apiOfPath(rawPath: string): ClientApi {
  const path = pathOf(rawPath);
  return path === '/v1/messages' || path.startsWith('/v1/messages/') ? 'anthropic' : 'openai';
}

/** The `api` label of request metrics: bounded, one value per front door. */
export function apiLabel(route: ApiRoute | undefined): string {
  if (!route) return '-';
  if (route.kind === 'list-models') return 'models';
  if (route.template !== undefined) return 'template';
  switch (route.operation) {
    case 'chat/completions':
      return 'chat';
    case 'messages/count_tokens':
      return 'count_tokens';
    default:
      return route.operation;
  }
}
