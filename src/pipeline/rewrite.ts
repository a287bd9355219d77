/**
 * The upstream rewrite for one attempt: where to send it, with which credential, and the body with
 * the provider's model name. Headers the gateway owns are always overwritten, never trusted.
 */
import type { ModelRoute } from '../config/snapshot.js';
import { gatewayError, isGatewayError, type GatewayError } from '../errors.js';
import { upstreamFor } from '../providers/front-doors.js';
import { THINK_TAGS } from '../providers/openai/think-tags.js';
import { applyRulesToBytes } from './parameters.js';
import { adapterFor } from '../providers/registry.js';
import { type ChatTranslator, wantsJsonResponse } from '../providers/translation.js';
import { apiOf } from './route.js';
import { CREDENTIAL_HEADERS, type MessagesOperation, type NativeMessages, type Operation, type UpstreamTarget } from '../providers/types.js';
import { editTopLevel, replaceTopLevelString } from './json-patch.js';
import type { RequestBody } from './request-body.js';
import type { TranslationPlan } from './translation.js';

/** Header that selects Envoy's upstream cluster (see envoy/envoy.yaml). */
export const ROUTE_HEADER = 'x-tollgate-route';

export interface UpstreamRewrite {
  readonly setHeaders: readonly (readonly [string, string])[];
  readonly removeHeaders: readonly string[];
  /** Replacement body, or undefined when the body goes upstream unchanged. */
  readonly body: Buffer | undefined;
  /** Set when the provider's API is not OpenAI's: how its response is translated back. */
  readonly translation?: TranslationPlan;
}

/** True when requests of `operation` to providers of this route's type are translated. */
export function isTranslated(route: ModelRoute, operation: Operation = 'chat/completions'): boolean {
  return upstreamFor(operation, route.provider.type, route.upstreamModel).kind === 'translate';
}

/** A Responses request asking for a JSON answer (`text.format` json_object or json_schema). */
function wantsJsonText(json: Readonly<Record<string, unknown>>): boolean {
  const text = json['text'];
  const format = typeof text === 'object' && text !== null ? (text as Record<string, unknown>)['format'] : undefined;
  const type = typeof format === 'object' && format !== null ? (format as Record<string, unknown>)['type'] : undefined;
  return type === 'json_object' || type === 'json_schema';
}

/** Client headers of a front door that mean nothing to a provider of another API. */
const ANTHROPIC_HEADERS: readonly string[] = ['anthropic-version', 'anthropic-beta'];

/**
 * Builds the rewrite for sending `body` to `route`: the body passes through (model name patched)
 * when the provider speaks the client's API, or is translated; a request the provider's API cannot
 * take is a client error.
 */
export function upstreamRewrite(
  route: ModelRoute,
  operation: Operation,
  body: RequestBody,
  requestId: string,
): UpstreamRewrite | GatewayError | Promise<UpstreamRewrite | GatewayError> {
  const upstream = upstreamFor(operation, route.provider.type, route.upstreamModel);
  if (upstream.kind === 'native') return nativeRewrite(upstream.native, upstream.operation, route, body, requestId);
  if (upstream.kind === 'passthrough') {
    // A <think> filter (ModelProvider models[].reasoningTags) makes an OpenAI-style chat answer a translated one.
    if (route.reasoningTags === undefined || operation !== 'chat/completions') return buildRewrite(route, operation, body, requestId);
    const target = adapterFor(route.provider.type).target(route.provider, operation, route.upstreamModel, body.stream);
    return translatedRewrite(THINK_TAGS[route.reasoningTags], target, route, operation, body, requestId);
  }
  if (upstream.kind === 'unsupported') {
    return gatewayError('unsupported_parameter', `The model '${body.model}' is served by a ${route.provider.type} provider, which has no ${operation} API in Tollgate (served by: ${upstream.supported}).`);
  }
  const adapter = adapterFor(route.provider.type);
  const target = adapter.target(route.provider, upstream.operation, route.upstreamModel, body.stream);
  const rewrite = translatedRewrite(upstream.translator, target, route, operation, body, requestId);
  if (isGatewayError(rewrite)) return rewrite;
  return signed(route, target, rewrite);
}

/** Signed APIs (AWS SigV4, a bearer token): the signature covers the final path, host and body. */
function signed(route: ModelRoute, target: UpstreamTarget, rewrite: UpstreamRewrite): UpstreamRewrite | Promise<UpstreamRewrite | GatewayError> {
  const adapter = adapterFor(route.provider.type);
  if (!adapter.sign) return rewrite;
  return adapter.sign(route.provider, target, rewrite.body as Buffer).then(
    (signed) => ({ ...rewrite, setHeaders: [...rewrite.setHeaders, ...signed] }),
    // The cause (a token endpoint's answer, a credential parse error) may name internal hosts: the
    // client gets which provider failed, not why.
    () => gatewayError('provider_misconfigured', `The gateway could not sign the request for provider ${route.provider.name}: its credentials are missing, malformed or were refused.`),
  );
}

/** The values of an `anthropic-beta` header (comma-separated). */
export function betaValues(header: string | undefined): readonly string[] {
  if (header === undefined) return [];
  return header.split(',').map((v) => v.trim()).filter((v) => v !== '');
}

/**
 * A Messages request to a cloud that serves the model with Anthropic's own API (Claude on Bedrock or
 * Vertex AI): the client's bytes with the cloud's top-level edits (no model, the cloud's
 * anthropic_version...) spliced in, nothing else re-serialised; the answer is read only where the
 * cloud's shape differs (errors, Bedrock's event stream).
 */
function nativeRewrite(
  native: NativeMessages,
  operation: MessagesOperation,
  route: ModelRoute,
  body: RequestBody,
  requestId: string,
): UpstreamRewrite | GatewayError | Promise<UpstreamRewrite | GatewayError> {
  const target = adapterFor(route.provider.type).target(route.provider, operation, route.upstreamModel, body.stream);
  const edited = editTopLevel(body.raw, body.json, native.edits(operation, route.upstreamModel, betaValues(body.anthropicBeta)));
  const ruled = route.parameters ? applyRulesToBytes(edited, route.parameters) : edited;
  const out = native.wrap ? native.wrap(operation, ruled) : ruled;
  const headers = headersFor(target, requestId, out);
  const rewrite: UpstreamRewrite = {
    setHeaders: headers.setHeaders,
    removeHeaders: [...headers.removeHeaders, ...ANTHROPIC_HEADERS.filter((h) => !native.passHeaders.includes(h))],
    body: out,
    translation: { translator: native.response(operation), stream: body.stream, includeUsage: false, upstreamModel: route.upstreamModel, api: 'anthropic' },
  };
  return signed(route, target, rewrite);
}

function translatedRewrite(
  chat: ChatTranslator,
  target: UpstreamTarget,
  route: ModelRoute,
  operation: Operation,
  body: RequestBody,
  requestId: string,
): UpstreamRewrite | GatewayError {
  const request = chat.request(body.json, { upstreamModel: route.upstreamModel, defaultMaxTokens: route.defaultMaxTokens, ...(body.streamUsage ? { streamUsage: true } : {}) });
  if (isGatewayError(request)) return request;
  const translated = route.parameters ? applyRulesToBytes(request, route.parameters) : request;
  const options = body.json['stream_options'];
  const includeUsage = body.streamUsage === true || (typeof options === 'object' && options !== null && (options as Record<string, unknown>)['include_usage'] === true);
  const headers = headersFor(target, requestId, translated);
  const api = apiOf(operation);
  return {
    setHeaders: headers.setHeaders,
    removeHeaders: api === 'anthropic' ? [...headers.removeHeaders, ...ANTHROPIC_HEADERS] : headers.removeHeaders,
    body: translated,
    translation: {
      translator: chat,
      stream: body.stream,
      includeUsage,
      upstreamModel: route.upstreamModel,
      api,
      ...(body.json['encoding_format'] === 'base64' ? { base64Embeddings: true } : {}),
      ...(api === 'openai' && (operation === 'responses' ? wantsJsonText(body.json) : wantsJsonResponse(body.json)) ? { jsonResponse: true } : {}),
    },
  };
}

/** Builds the rewrite for sending `body` to `route`, an OpenAI-style provider (the body passes through). */
export function buildRewrite(route: ModelRoute, operation: Operation, body: RequestBody, requestId: string): UpstreamRewrite {
  const target = adapterFor(route.provider.type).target(route.provider, operation, route.upstreamModel, body.stream, body.anthropicVersion);
  const patched =
    route.upstreamModel !== body.model
      ? replaceTopLevelString(body.raw, body.json, 'model', route.upstreamModel)
      : body.rewritten
        ? body.raw
        : undefined;
  // Per-model parameter rules (opt-in): the only passthrough bodies that are parsed again.
  const newBody = route.parameters ? applyRulesToBytes(patched ?? body.raw, route.parameters) : patched;
  return { ...headersFor(target, requestId, newBody), body: newBody };
}

function headersFor(target: UpstreamTarget, requestId: string, newBody: Buffer | undefined): Pick<UpstreamRewrite, 'setHeaders' | 'removeHeaders'> {
  const setHeaders: (readonly [string, string])[] = [
    [':authority', target.authority],
    [':path', target.path],
    [ROUTE_HEADER, target.scheme],
    ['x-request-id', requestId],
    ...target.headers,
  ];
  if (newBody) setHeaders.push(['content-length', String(newBody.length)]);
  const owned = new Set(target.headers.map(([name]) => name));
  return { setHeaders, removeHeaders: CREDENTIAL_HEADERS.filter((h) => !owned.has(h)) };
}
