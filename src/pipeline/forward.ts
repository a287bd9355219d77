/**
 * Request-body step: read the body, resolve the model, open the routing plan (candidate providers,
 * failover) and hand the request to the attempt stage, where each attempt is rewritten. A request
 * with a single target is rewritten here and goes straight to its provider (RequestPlan.direct).
 */
import type { RouteTier, Snapshot } from '../config/snapshot.js';
import { isRenderError, renderRequest } from '../templates/compile.js';
import { gatewayError, isGatewayError, type GatewayError } from '../errors.js';
import { checkMessages, checkMessagesRequest } from '../providers/anthropic/messages-request.js';
import { messagesToChat } from '../providers/openai/messages.js';
import { estimatePromptTokens } from '../ratelimit/estimate.js';
import { TOKEN_COUNT_HEADER } from './translation.js';
import { upstreamFor } from '../providers/front-doors.js';
import type { Operation } from '../providers/types.js';
import type { ResilientRouter } from '../routing/router.js';
import type { RequestContext } from './context.js';
import { directRewrite, dispatchRewrite } from './dispatch.js';
import { resolveForKey } from './model.js';
import { readRequestBody, type RequestBody } from './request-body.js';
import type { UpstreamRewrite } from './rewrite.js';
import { RESPONSE_ID, type ResponseDirectory } from '../responses/directory.js';
import { ResponseIdCapture } from '../responses/id-capture.js';
import { lookupStored, notFound, pinTiers } from './stored-responses.js';

/** `namespace` of a key's `namespace/name`. */
function namespaceOfKey(name: string): string {
  const slash = name.indexOf('/');
  return slash === -1 ? 'default' : name.slice(0, slash);
}

/**
 * POST /v1/templates/<name>: the template (compiled with the snapshot) rendered with the client's
 * input into a chat completions body, which the rest of the pipeline handles like any chat request.
 */
function renderTemplate(snapshot: Snapshot, name: string, raw: Buffer, contentType: string | undefined): RequestBody | GatewayError {
  const template = snapshot.templates.byName.get(name);
  if (!template) return gatewayError('template_not_found', `The template '${name.slice(name.indexOf('/') + 1)}' does not exist.`);
  if (contentType !== undefined && !contentType.toLowerCase().includes('json')) {
    return gatewayError('unsupported_media_type', `Content-Type must be application/json, got "${contentType}".`);
  }
  const rendered = renderRequest(template, raw);
  if (isRenderError(rendered)) {
    if (rendered.reason === 'template') return gatewayError('template_error', rendered.message);
    if (rendered.reason === 'too_large') return gatewayError('request_too_large', rendered.message);
    return gatewayError('invalid_template_input', rendered.message);
  }
  const body = readRequestBody(rendered, 'application/json');
  // The bytes sent upstream are the rendered ones, not the client's.
  return isGatewayError(body) ? body : { ...body, rewritten: true };
}

/**
 * Plans the upstream attempts for a buffered body, recording what it learns on `ctx`.
 * Returns the rewrite, or the error the client should get.
 */
export function planForward(
  ctx: RequestContext,
  raw: Buffer,
  contentType: string | undefined,
  router: ResilientRouter,
  /** Limits step hook: may return the body with `stream_options` added (pipeline/limits.ts). */
  prepare?: (ctx: RequestContext, body: RequestBody) => RequestBody,
  /** Guardrail step hook: may refuse the request or return it with text masked (src/guardrails/step.ts). */
  guard?: (ctx: RequestContext, body: RequestBody) => RequestBody | GatewayError,
  /** Where stored Responses API responses live (previous_response_id, recording new ones); absent = none. */
  responses?: ResponseDirectory,
): Planned | Promise<Planned> {
  const { key, route } = ctx;
  if (!key || route?.kind !== 'forward') throw new Error('planForward called before admission');
  let read: RequestBody | GatewayError;
  if (route.template !== undefined) {
    const rendered = renderTemplate(ctx.snapshot, `${namespaceOfKey(key.name)}/${route.template}`, raw, contentType);
    if (isGatewayError(rendered)) return rendered;
    read = rendered;
  } else {
    read = readRequestBody(raw, contentType);
  }
  if (isGatewayError(read)) return read;
  if (route.operation === 'messages') {
    const refused = checkMessagesRequest(read.json);
    if (refused) return refused;
  } else if (route.operation === 'messages/count_tokens') {
    const refused = checkMessages(read.json['messages']);
    if (refused) return refused;
  }
  let body: RequestBody = ctx.anthropicVersion === undefined ? read : { ...read, anthropicVersion: ctx.anthropicVersion };
  if (ctx.anthropicBeta !== undefined) body = { ...body, anthropicBeta: ctx.anthropicBeta };
  ctx.requestedModel = body.model;
  ctx.stream = body.stream;
  ctx.body = body;
  const resolved = resolveForKey(body.model, key, ctx.snapshot, ctx.tenant?.mapping);
  if (isGatewayError(resolved)) return resolved;
  ctx.model = resolved.model;
  if (guard) {
    const guarded = guard(ctx, body);
    if (isGatewayError(guarded)) return guarded;
    body = guarded;
    ctx.body = body;
  }
  const tiers = servingTiers(route.operation, resolved.tiers);
  // count_tokens for a model no Anthropic provider serves: the gateway counts, with the limiter's estimator.
  if (isGatewayError(tiers)) return route.operation === 'messages/count_tokens' ? countTokensLocally(body, resolved.tiers) : tiers;
  const open = (served: readonly RouteTier[]): Planned => openPlan(ctx, body, resolved.model, served, route.operation, router, prepare);
  if (route.operation !== 'responses' || !responses) return open(tiers);
  const store = body.json['store'] !== false;
  // The answer's id is recorded (which provider, model and consumer) so it can be retrieved later.
  if (store) ctx.idCapture = new ResponseIdCapture(body.stream);
  const previous = body.json['previous_response_id'];
  if (previous === undefined || previous === null) return open(tiers);
  if (typeof previous !== 'string') return gatewayError('invalid_value', "'previous_response_id' must be a string.");
  if (!RESPONSE_ID.test(previous)) return notFound(previous.slice(0, 64), true);
  return lookupStored(responses, previous, key, true).then((entry) => {
    if (isGatewayError(entry)) return entry;
    // The previous response's state lives at the provider that created it: only it can continue it.
    const pinned = pinTiers(tiers, entry, store);
    if (!pinned) {
      return gatewayError(
        'invalid_value',
        `The previous response '${previous}' is stored at a provider that does not serve the model '${resolved.model}'; continue it with a model that provider serves (for example '${entry.model}'), or send the whole conversation as input without previous_response_id.`,
      );
    }
    return open(pinned);
  });
}

/** What planning a request gives: the rewrite, the client's error, or the gateway's own answer. */
export type Planned = UpstreamRewrite | GatewayError | LocalAnswer;

function openPlan(
  ctx: RequestContext,
  read: RequestBody,
  model: string,
  tiers: readonly RouteTier[],
  operation: Operation,
  router: ResilientRouter,
  prepare: ((ctx: RequestContext, body: RequestBody) => RequestBody) | undefined,
): Planned {
  const body = prepare ? prepare(ctx, read) : read;
  const plan = router.open({
    requestId: ctx.requestId,
    model,
    operation,
    body,
    tiers,
    config: ctx.snapshot.resilience,
  });
  if (isGatewayError(plan)) return plan;
  ctx.planId = plan.id;
  if (!plan.direct) return dispatchRewrite(plan);
  // One target: no attempt stage, no choice to make.
  const choice = router.beginDirect(plan);
  ctx.attempt = choice.attempt;
  return directRewrite(plan, choice.attempt.candidate);
}

/**
 * The routes that can serve `operation` (failover happens among them only): all of them for chat,
 * Messages and Responses (translated where needed); for count_tokens only providers whose API has it,
 * or a 400 naming the provider types that do.
 */
export function servingTiers(operation: Operation, tiers: readonly RouteTier[]): readonly RouteTier[] | GatewayError {
  if (operation !== 'responses' && operation !== 'messages/count_tokens') return tiers;
  const kept: RouteTier[] = [];
  let supported = '';
  for (const tier of tiers) {
    const routes = tier.routes.filter((r) => {
      const u = upstreamFor(operation, r.provider.type, r.upstreamModel);
      if (u.kind === 'unsupported') supported = u.supported;
      return u.kind !== 'unsupported';
    });
    if (routes.length === tier.routes.length) kept.push(tier);
    else if (routes.length > 0) kept.push({ priority: tier.priority, routes, totalWeight: routes.reduce((sum, r) => sum + r.provider.weight, 0) });
  }
  if (kept.length > 0) return kept;
  const types = [...new Set(tiers.flatMap((t) => t.routes.map((r) => r.provider.type)))].join(', ');
  return gatewayError('unsupported_parameter', `/v1/${operation} is served only by ${supported} providers; this model is served by: ${types}. Use /v1/chat/completions${operation === 'responses' ? '' : ' or /v1/messages'} for it.`);
}

/** An answer the gateway gives itself (no provider involved). */
export interface LocalAnswer {
  readonly kind: 'answer';
  readonly status: number;
  readonly body: string;
  readonly headers?: Readonly<Record<string, string>>;
}

export const ESTIMATE_HEADERS: Readonly<Record<string, string>> = Object.freeze({ [TOKEN_COUNT_HEADER]: 'estimate' });

/**
 * `/v1/messages/count_tokens` answered by the gateway: the Messages request is read as the chat
 * request it translates to and counted by the estimator the limiter uses for admission (tiktoken
 * with the upstream model's encoding, chat framing, images at a fixed count). Marked as an estimate.
 */
export function countTokensLocally(body: RequestBody, tiers: readonly RouteTier[]): LocalAnswer | GatewayError {
  const upstreamModel = tiers[0]?.routes[0]?.upstreamModel ?? body.model;
  const counted = estimatedCountBody(body, upstreamModel);
  if (isGatewayError(counted)) return counted;
  return { kind: 'answer', status: 200, body: counted, headers: ESTIMATE_HEADERS };
}

/** Anthropic's count_tokens answer `{"input_tokens":N}` from the gateway's estimator, for `upstreamModel`. */
export function estimatedCountBody(body: RequestBody, upstreamModel: string): string | GatewayError {
  const chat = messagesToChat({ ...body.json, max_tokens: 1, stream: false }, upstreamModel, 'max_tokens');
  if (isGatewayError(chat)) return chat;
  return JSON.stringify({ input_tokens: estimatePromptTokens(chat, upstreamModel) });
}

export function isLocalAnswer(v: unknown): v is LocalAnswer {
  return typeof v === 'object' && v !== null && (v as { kind?: unknown }).kind === 'answer';
}
