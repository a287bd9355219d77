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
  /** GET /v1/models: `query` is the client's query string (with its `?`; empty when none), for Anthropic's paging. */
  | { readonly kind: 'list-models'; readonly query: string }
  /** GET /v1/models/{model}: one model of the list (OpenAI's and Anthropic's retrieve). */
  | { readonly kind: 'retrieve-model'; readonly model: string }
  /** A stored Responses API response (src/pipeline/stored-responses.ts), addressed by its id. */
  | {
      readonly kind: 'stored-response';
      readonly action: StoredAction;
      readonly responseId: string;
      /** The client's query string (with its `?`), passed on; empty when none. */
      readonly query: string;
    };

/** What a request does to a stored response: GET, DELETE, GET .../input_items, POST .../cancel. */
export type StoredAction = 'retrieve' | 'delete' | 'input_items' | 'cancel';

const ROUTES: ReadonlyMap<string, { readonly method: string; readonly route: ApiRoute }> = new Map([
  ['/v1/chat/completions', { method: 'POST', route: { kind: 'forward', operation: 'chat/completions' } }],
  ['/v1/embeddings', { method: 'POST', route: { kind: 'forward', operation: 'embeddings' } }],
  ['/v1/messages', { method: 'POST', route: { kind: 'forward', operation: 'messages' } }],
  ['/v1/messages/count_tokens', { method: 'POST', route: { kind: 'forward', operation: 'messages/count_tokens' } }],
  ['/v1/responses', { method: 'POST', route: { kind: 'forward', operation: 'responses' } }],
] as const);

const SUPPORTED = 'POST /v1/chat/completions, POST /v1/embeddings, POST /v1/responses, GET and DELETE /v1/responses/{id}, GET /v1/responses/{id}/input_items, POST /v1/responses/{id}/cancel, POST /v1/messages, POST /v1/messages/count_tokens, POST /v1/templates/<name>, GET /v1/models, GET /v1/models/{model}';

const MODELS = '/v1/models';
const MODELS_PREFIX = '/v1/models/';

const TEMPLATES_PREFIX = '/v1/templates/';
const RESPONSES_PREFIX = '/v1/responses/';
/** Response ids the gateway accepts in a path (OpenAI's are `resp_` + hex); others are unknown (404). */
import { RESPONSE_ID } from '../responses/directory.js';
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
  if (path.startsWith(RESPONSES_PREFIX)) return classifyStored(method, path, rawPath);
  if (path === MODELS || path.startsWith(MODELS_PREFIX)) return classifyModels(method, path, rawPath);
  const entry = ROUTES.get(path);
  if (!entry) return gatewayError('unknown_url', `Unknown request URL: ${method} ${path}. Supported: ${SUPPORTED}.`);
  if (method !== entry.method) return gatewayError('method_not_allowed', `Method ${method} is not allowed on ${path}; use ${entry.method}.`);
  return entry.route;
}

/**
 * `/v1/models` and `/v1/models/{model}`. The model is the rest of the path, percent-decoded: SDKs
 * encode a `/` in a name (`org/model`) as `%2F`, curl users may not; both name the same model.
 */
function classifyModels(method: string, path: string, rawPath: string): ApiRoute | GatewayError {
  if (method !== 'GET') return gatewayError('method_not_allowed', `Method ${method} is not allowed on ${path}; use GET.`);
  if (path === MODELS) {
    const q = rawPath.indexOf('?');
    return { kind: 'list-models', query: q < 0 ? '' : rawPath.slice(q) };
  }
  const raw = path.slice(MODELS_PREFIX.length);
  let model: string;
  try {
    model = decodeURIComponent(raw);
  } catch {
    model = raw; // not valid percent-encoding: the name as sent (no served name matches it, so 404)
  }
  return { kind: 'retrieve-model', model };
}

/** `/v1/responses/{id}`, `/v1/responses/{id}/input_items`, `/v1/responses/{id}/cancel`. */
function classifyStored(method: string, path: string, rawPath: string): ApiRoute | GatewayError {
  const rest = path.slice(RESPONSES_PREFIX.length);
  const slash = rest.indexOf('/');
  const responseId = slash < 0 ? rest : rest.slice(0, slash);
  const sub = slash < 0 ? '' : rest.slice(slash + 1);
  const q = rawPath.indexOf('?');
  const query = q < 0 ? '' : rawPath.slice(q);
  let action: StoredAction;
  let allowed: string;
  if (sub === '') {
    allowed = 'GET or DELETE';
    if (method !== 'GET' && method !== 'DELETE') return gatewayError('method_not_allowed', `Method ${method} is not allowed on ${path}; use ${allowed}.`);
    action = method === 'GET' ? 'retrieve' : 'delete';
  } else if (sub === 'input_items' || sub === 'cancel') {
    allowed = sub === 'cancel' ? 'POST' : 'GET';
    if (method !== allowed) return gatewayError('method_not_allowed', `Method ${method} is not allowed on ${path}; use ${allowed}.`);
    action = sub;
  } else {
    return gatewayError('unknown_url', `Unknown request URL: ${method} ${path}. Supported: ${SUPPORTED}.`);
  }
  // Not a response id this gateway could have stored: unknown, like every id it never saw.
  if (!RESPONSE_ID.test(responseId)) return gatewayError('response_not_found', `Response with id '${responseId.slice(0, 64)}' not found.`);
  return { kind: 'stored-response', action, responseId, query };
}

/** The client API of an operation: Anthropic's for the Messages front door, OpenAI's otherwise. */
export function apiOf(operation: Operation): ClientApi {
  return operation === 'messages' || operation === 'messages/count_tokens' ? 'anthropic' : 'openai';
}

/**
 * The client API a request speaks, known before the request is classified or authenticated, so that
 * even an unknown URL or a missing key under /v1/messages is answered in Anthropic's shape. /v1/models
 * is shared by both APIs: Anthropic's clients always send `anthropic-version`, OpenAI's never do.
 */
export function apiOfRequest(rawPath: string, anthropicVersion: string | undefined): ClientApi {
  const path = pathOf(rawPath);
  if (path === '/v1/messages' || path.startsWith('/v1/messages/')) return 'anthropic';
  if (anthropicVersion !== undefined && (path === MODELS || path.startsWith(MODELS_PREFIX))) return 'anthropic';
  return 'openai';
}

const STORED_LABELS: Readonly<Record<StoredAction, string>> = {
  retrieve: 'responses_retrieve',
  delete: 'responses_delete',
  input_items: 'responses_input_items',
  cancel: 'responses_cancel',
};

/** The `api` label of request metrics: bounded, one value per front door. */
export function apiLabel(route: ApiRoute | undefined): string {
  if (!route) return '-';
  if (route.kind === 'list-models' || route.kind === 'retrieve-model') return 'models';
  if (route.kind === 'stored-response') return STORED_LABELS[route.action];
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
