/**
 * The limits step and response accounting of one request.
 *
 * Admission (after model mapping and provider choice, before the rewrite goes out): every check of
 * the key, its ancestors, per-model entries and the provider model is checked and charged in one
 * limiter call. Tokens are reserved as prompt estimate + completion estimate (see
 * ratelimit/estimate.ts) only when a token limit applies.
 *
 * Response: x-ratelimit-* headers on the response; the response body is inspected only for requests
 * that need it (`mode_override` to STREAMED): the real `usage` corrects the reservation when the
 * request ends, cancelled or failed requests release what they did not use, and a stream that grows
 * past its reservation extends it in steps, so concurrent requests see real consumption while it
 * happens. When an extension is refused the key's midStreamPolicy applies (finish, or an error event).
 * See docs/limits.md ("Tokens: reservation, reconciliation and the overshoot bound") for the
 * overshoot bound this gives.
 */
import type { KeyEntry, ModelRoute, RouteTier } from '../config/snapshot.js';
import { errorEventFor, gatewayError, isGatewayError, type GatewayError } from '../errors.js';
import { messagesToChat } from '../providers/openai/messages.js';
import { AnthropicUsageMeter, ResponsesUsageMeter, type StreamUsageMeter } from '../usage/event-usage.js';
import { apiOf } from './route.js';
import type { Logger } from '../observability/logger.js';
import { budgetCappedTotal, limiterDurationSeconds, midStreamExhaustedTotal, rateLimitRejectionsTotal } from '../observability/metrics.js';
import { monthSpan } from '../ratelimit/calendar.js';
import { CompletionHistory, estimatePromptTokens, maxCompletionTokens } from '../ratelimit/estimate.js';
import { buildChecks, hasTokenChecks, providerChecks, rateLimitHeaders, refusal } from '../ratelimit/plan.js';
import { LimiterUnavailableError, type AdmitResult, type Cost, type LimitCheck, type Limiter, type Reservation } from '../ratelimit/types.js';
import { picosToMicrosCeil } from '../billing/money.js';
import { costOf, type CompiledPrice } from '../billing/pricing.js';
import { UnpricedRequests } from '../billing/unpriced.js';
import type { UsageAccountant } from '../usage/accountant.js';
import { JsonUsageTail, SseUsageMeter } from '../usage/response-usage.js';
import { templateOf, type RequestContext } from './context.js';
import type { RequestBody } from './request-body.js';
import type { UpstreamRewrite } from './rewrite.js';

/** Which streams get their chunks inspected for usage: all of them, or only token-limited ones. */
export type StreamUsageMode = 'all' | 'limited';

export interface LimitsDeps {
  readonly limiter: Limiter;
  readonly usage: UsageAccountant;
  readonly logger: Logger;
  readonly streamUsage: StreamUsageMode;
  readonly history?: CompletionHistory;
  readonly now?: () => number;
  /** Smallest mid-stream extension, in tokens. */
  readonly minExtension?: number;
  /** Smallest answer admitted at the edge of a budget (tokens; default MIN_ANSWER_TOKENS). */
  readonly minAnswerTokens?: number;
}

/**
 * At the edge of a calendar budget, a request is admitted with its answer capped (max_tokens) when
 * what is left covers the prompt plus at least this many completion tokens; below it, refused.
 */
export const MIN_ANSWER_TOKENS = 16;

/** What to do with one response body chunk (built into an Envoy answer by extproc). */
export type BodyDecision =
  | { readonly kind: 'continue' }
  | { readonly kind: 'replace'; readonly body: Buffer }
  /** Stop the response now (Envoy resets the stream; the client already has the error event). */
  | { readonly kind: 'abort' };

const CONTINUE: BodyDecision = { kind: 'continue' };

/** A Messages body as the chat request it translates to, for the estimator (it was checked before; a
 * body the translation refuses is estimated as it is). */
function asChat(json: Readonly<Record<string, unknown>>): Readonly<Record<string, unknown>> {
  const chat = messagesToChat(json, '', 'max_tokens');
  return isGatewayError(chat) ? json : chat;
}
const STREAM_OPTIONS = Buffer.from('"stream_options":{"include_usage":true},');

/** Per-request limits and usage state. */
export class RequestAccounting {
  reservation: Reservation | undefined;
  promptEstimate = 0;
  completionEstimate = 0;
  tokenLimited = false;
  /** x-ratelimit-* for the response. */
  headers: Record<string, string> | undefined;
  meter: StreamUsageMeter | undefined;
  tail: JsonUsageTail | undefined;
  /** The gateway asked the upstream for stream usage; the client did not. */
  injectedUsage = false;
  /** Response body inspected at all. */
  inspect = false;
  /** `ok`, budget ran out with policy finish (`exhausted`), or error event sent (`cut`). */
  state: 'ok' | 'exhausted' | 'cut' = 'ok';
  maxTokens: number | undefined;
  embeddings = false;
  /** A money budget applies: reserve and reconcile cost too. */
  costLimited = false;
  /** Price used at admission (the dearest route of the model), if any. */
  admissionPrice: CompiledPrice | undefined;
  /** Micro-units per completion token at the admission price. */
  completionRate = 0;
  /** The answer was capped at the edge of a budget to this many tokens (max_tokens). */
  cappedTo: number | undefined;
  /** The request body with the cap written in, for the upstream (set with cappedTo). */
  cappedBody: RequestBody | undefined;
  /** The client's API (Anthropic's for /v1/messages): the shape of a mid-stream error event. */
  api: 'openai' | 'anthropic' = 'openai';
  /** The body is an Anthropic Messages request (its prompt is estimated as the chat request it translates to). */
  messages = false;
  /** Provider protection reservations, one per attempt that passed them. */
  readonly providerReservations: { readonly scopeId: string; readonly reservation: Reservation }[] = [];

  constructor(
    readonly key: KeyEntry,
    readonly checks: readonly LimitCheck[],
  ) {}
}

export class LimitsStep {
  private readonly history: CompletionHistory;
  /** Requests between admission and finalize, by routing plan id (for the attempt stage). */
  private readonly byPlan = new Map<string, RequestAccounting>();
  /** Requests of models without a price: counted, and a warning once per model. */
  private readonly unpriced: UnpricedRequests;

  constructor(private readonly deps: LimitsDeps) {
    this.history = deps.history ?? new CompletionHistory();
    this.unpriced = new UnpricedRequests(deps.logger);
  }

  private now(): number {
    return this.deps.now ? this.deps.now() : Date.now();
  }

  /**
   * Before the request is planned: decides whether the response will be inspected and, for a stream
   * whose client did not ask for usage, returns the body with `stream_options.include_usage` added
   * (every attempt, on any provider, sends that body).
   */
  readonly prepare = (ctx: RequestContext, body: RequestBody): RequestBody => {
    const key = ctx.key;
    if (!key || !ctx.model) return body;
    const operation = ctx.route?.kind === 'forward' ? ctx.route.operation : 'chat/completions';
    // count_tokens uses no tokens and produces no usage: no limits, no record.
    if (operation === 'messages/count_tokens') return body;
    const checks = key.hasLimits ? buildChecks(key, ctx.model, undefined, this.now()) : [];
    const acc = new RequestAccounting(key, checks);
    ctx.accounting = acc;
    acc.tokenLimited = hasTokenChecks(checks);
    acc.embeddings = operation === 'embeddings';
    acc.api = apiOf(operation);
    acc.messages = operation === 'messages';
    acc.inspect = !body.stream || acc.tokenLimited || this.deps.streamUsage === 'all';
    // Fallback prompt size if the upstream reports no usage: bytes / 4 (tiktoken at admission when limited).
    acc.promptEstimate = Math.ceil(body.raw.length / 4);
    if (!acc.inspect) return body;
    if (!body.stream) {
      acc.tail = new JsonUsageTail();
      return body;
    }
    // Messages and Responses streams always carry usage in their own events; nothing is injected.
    if (operation === 'messages') {
      acc.meter = new AnthropicUsageMeter();
      return body;
    }
    if (operation === 'responses') {
      acc.meter = new ResponsesUsageMeter();
      return body;
    }
    const options = body.json['stream_options'];
    if (options !== undefined) {
      // The client set stream_options: usage comes only if it asked; it sees what it asked for.
      acc.meter = new SseUsageMeter(false);
      return body;
    }
    acc.injectedUsage = true;
    acc.meter = new SseUsageMeter(true);
    const patched = withStreamUsage(body.raw);
    const next: RequestBody = { ...body, raw: patched, rewritten: true, streamUsage: true };
    ctx.body = next;
    return next;
  };

  /**
   * Admission. Returns the rewrite to send (unchanged) or the refusal. Synchronous
   * when the request has no limits.
   */
  admit(ctx: RequestContext, rewrite: UpstreamRewrite): UpstreamRewrite | GatewayError | Promise<UpstreamRewrite | GatewayError> {
    const body = ctx.body;
    delete ctx.body;
    const acc = ctx.accounting;
    if (!acc || !body || !ctx.model) return rewrite;
    if (ctx.planId !== undefined) this.byPlan.set(ctx.planId, acc);
    const checks = acc.checks;
    if (checks.length === 0) return rewrite;
    const started = process.hrtime.bigint();
    const model = ctx.model;
    const cost = this.admissionCost(model, acc, body, ctx.snapshot.admissionPrice.get(model));
    return this.deps.limiter.admit(checks, cost, this.now()).then(
      (result) => {
        limiterDurationSeconds.observe({ backend: this.deps.limiter.mode === 'normal' ? 'primary' : 'degraded' }, Number(process.hrtime.bigint() - started) / 1e9);
        if (!result.allowed) {
          const denied = checks[result.denied] as LimitCheck;
          rateLimitRejectionsTotal.inc({ limit: denied.name, scope: denied.scope });
          if (ctx.planId !== undefined) this.byPlan.delete(ctx.planId);
          delete ctx.accounting;
          const asked = requested(cost, result.completion);
          const amount = denied.unit === 'requests' ? 1 : denied.unit === 'tokens' ? asked.tokens : asked.cost;
          return refusal(checks, result.states, result.denied, result.retryAfterMs, amount, ctx.snapshot.currency);
        }
        acc.reservation = result.reservation;
        acc.headers = rateLimitHeaders(checks, result.states);
        const cap = result.completion < acc.completionEstimate ? result.completion : acc.maxTokens !== undefined && result.cap < acc.maxTokens ? result.cap : undefined;
        if (cap !== undefined && !acc.embeddings) {
          acc.cappedTo = cap;
          acc.cappedBody = withMaxTokens(body, cap, acc.injectedUsage, maxTokensField(body, ctx.snapshot.routesByModel.get(model), ctx.route?.kind === 'forward' && ctx.route.operation === 'responses'));
          budgetCappedTotal.inc();
        }
        return rewrite;
      },
      (err: unknown) => {
        if (ctx.planId !== undefined) this.byPlan.delete(ctx.planId);
        delete ctx.accounting;
        if (err instanceof LimiterUnavailableError) return gatewayError('limiter_unavailable', err.message);
        throw err;
      },
    );
  }

  /**
   * A request that generates nothing (a stored response retrieved, deleted, cancelled, its input
   * items listed): counted against the request-rate limits of the key and its ancestors, never
   * against token or money budgets. Undefined = admitted.
   */
  admitRequestOnly(ctx: RequestContext): GatewayError | undefined | Promise<GatewayError | undefined> {
    const key = ctx.key;
    if (!key?.hasLimits || !ctx.model) return undefined;
    const checks = buildChecks(key, ctx.model, undefined, this.now()).filter((c) => c.unit === 'requests');
    if (checks.length === 0) return undefined;
    return this.deps.limiter.admit(checks, { requests: 1, tokens: 0 }, this.now()).then(
      (result) => {
        if (result.allowed) return undefined;
        const denied = checks[result.denied] as LimitCheck;
        rateLimitRejectionsTotal.inc({ limit: denied.name, scope: denied.scope });
        return refusal(checks, result.states, result.denied, result.retryAfterMs, 1, ctx.snapshot.currency);
      },
      (err: unknown) => {
        if (err instanceof LimiterUnavailableError) return gatewayError('limiter_unavailable', err.message);
        throw err;
      },
    );
  }

  /** What admission reserves: the estimates, and the Shrink parts for chat requests (edge of a budget). */
  private admissionCost(model: string, acc: RequestAccounting, body: RequestBody, price: CompiledPrice | undefined): Cost {
    if (!acc.tokenLimited) return { requests: 1, tokens: 0 };
    acc.promptEstimate = estimatePromptTokens(acc.messages ? asChat(body.json) : body.json, model);
    acc.maxTokens = maxCompletionTokens(body.json);
    acc.completionEstimate = this.history.estimate(acc.key.name, model, acc.maxTokens, acc.embeddings);
    acc.costLimited = acc.checks.some((c) => c.unit === 'cost');
    const priced = acc.costLimited ? price : undefined;
    acc.admissionPrice = priced;
    acc.completionRate = priced ? priced.completionMicrosPerToken : 0;
    const promptCost = priced ? picosToMicrosCeil(BigInt(acc.promptEstimate) * priced.input) : 0;
    if (acc.embeddings) return { requests: 1, tokens: acc.promptEstimate, cost: promptCost };
    return {
      requests: 1,
      tokens: acc.promptEstimate + acc.completionEstimate,
      cost: promptCost + Math.ceil(acc.completionEstimate * acc.completionRate),
      shrink: {
        promptTokens: acc.promptEstimate,
        promptCost,
        completionTokens: acc.completionEstimate,
        minCompletion: this.deps.minAnswerTokens ?? MIN_ANSWER_TOKENS,
        completionRate: acc.completionRate,
      },
    };
  }

  /**
   * Attempt stage: provider protection for the target of one attempt (its ModelProvider model
   * limits, across all keys and replicas). A refusal is a 429 for this attempt, which Envoy's retry
   * policy may send to another provider.
   */
  admitAttempt(planId: string, route: ModelRoute): GatewayError | undefined | Promise<GatewayError | undefined> {
    if (route.limits.length === 0) return undefined;
    const acc = this.byPlan.get(planId);
    const checks = providerChecks(route, this.now());
    const tokens = acc ? (acc.reservation?.tokens ?? acc.promptEstimate + acc.completionEstimate) : 0;
    return this.deps.limiter.admit(checks, { requests: 1, tokens }, this.now()).then(
      (result) => {
        if (!result.allowed) {
          const denied = checks[result.denied] as LimitCheck;
          rateLimitRejectionsTotal.inc({ limit: denied.name, scope: 'provider' });
          return refusal(checks, result.states, result.denied, result.retryAfterMs, denied.unit === 'requests' ? 1 : tokens);
        }
        acc?.providerReservations.push({ scopeId: route.limitScopeId, reservation: result.reservation });
        return undefined;
      },
      (err: unknown) => {
        if (err instanceof LimiterUnavailableError) return gatewayError('limiter_unavailable', err.message);
        throw err;
      },
    );
  }

  /** Response headers: extra headers for the client and whether to inspect the body. */
  responseHeaders(ctx: RequestContext, status: number, endOfStream: boolean): { headers: Record<string, string> | undefined; inspectBody: boolean } {
    const acc = ctx.accounting;
    if (!acc) return { headers: undefined, inspectBody: false };
    if (status !== 200) {
      acc.meter = undefined;
      acc.tail = undefined;
    }
    return { headers: acc.headers, inspectBody: !endOfStream && (acc.meter !== undefined || acc.tail !== undefined) };
  }

  /** One response body chunk. Synchronous unless a stream needs a bigger reservation. */
  responseBody(ctx: RequestContext, chunk: Buffer, end: boolean): BodyDecision | Promise<BodyDecision> {
    const acc = ctx.accounting;
    if (!acc) return CONTINUE;
    if (acc.state === 'cut') return end ? { kind: 'replace', body: Buffer.alloc(0) } : { kind: 'abort' };
    if (acc.tail) {
      acc.tail.push(chunk);
      return CONTINUE;
    }
    const meter = acc.meter;
    if (!meter) return CONTINUE;
    const replaced = meter.push(chunk, end);
    const res = acc.reservation;
    if (!res || !acc.tokenLimited || acc.state !== 'ok' || end) return replaced ? { kind: 'replace', body: replaced } : CONTINUE;
    const spent = acc.promptEstimate + (meter.usage?.completionTokens ?? meter.counted);
    if (spent <= res.tokens) return replaced ? { kind: 'replace', body: replaced } : CONTINUE;
    const step = Math.max(this.deps.minExtension ?? 64, acc.completionEstimate, spent - res.tokens);
    return this.deps.limiter.extend(res, { tokens: step, cost: Math.ceil(step * acc.completionRate) }, this.now()).then(
      (result) => this.afterExtend(ctx, acc, result, replaced ?? chunk, replaced !== undefined),
      () => (replaced ? { kind: 'replace', body: replaced } : CONTINUE),
    );
  }

  private afterExtend(ctx: RequestContext, acc: RequestAccounting, result: AdmitResult, bytes: Buffer, changed: boolean): BodyDecision {
    if (result.allowed) return changed ? { kind: 'replace', body: bytes } : CONTINUE;
    const policy = acc.key.midStreamPolicy;
    midStreamExhaustedTotal.inc({ policy });
    const denied = acc.checks.filter((c) => c.unit !== 'requests')[result.denied];
    this.deps.logger.info({ requestId: ctx.requestId, consumer: acc.key.name, limit: denied?.name, scope: denied?.scopeId, policy }, 'token budget exhausted mid-stream');
    if (policy === 'finish') {
      acc.state = 'exhausted';
      return changed ? { kind: 'replace', body: bytes } : CONTINUE;
    }
    acc.state = 'cut';
    const err: GatewayError = gatewayError(
      denied !== undefined && isQuota(denied) ? 'insufficient_quota' : 'rate_limit_exceeded',
      `The ${denied?.unit === 'cost' ? 'money' : 'token'} budget (${denied?.name ?? 'tokens'} of ${denied?.scopeId ?? acc.key.name}) ran out during this response; it was stopped.`,
    );
    return { kind: 'replace', body: Buffer.concat([bytes, Buffer.from(errorEventFor(acc.api, err))]) };
  }

  /** Once per request: correct the reservation with real usage and write the usage record. */
  finalize(ctx: RequestContext, cancelled: boolean): void {
    const acc = ctx.accounting;
    if (!acc || !ctx.model) return;
    const ok = ctx.status === 200 && ctx.chosen !== undefined;
    const reported = acc.meter?.usage ?? (ok ? acc.tail?.usage() : undefined);
    let prompt: number;
    let completion: number;
    if (reported) {
      prompt = reported.promptTokens;
      completion = reported.completionTokens;
    } else if (acc.meter && (ok || cancelled)) {
      // A stream without usage (or cut short): the prompt estimate plus the text counted so far.
      prompt = acc.promptEstimate;
      completion = acc.meter.counted;
    } else if (ok && acc.reservation) {
      // A 200 whose body carried no usage: keep what was reserved.
      prompt = acc.promptEstimate;
      completion = acc.completionEstimate;
    } else {
      prompt = 0;
      completion = 0; // the upstream failed or never answered: release the tokens
    }
    // Money is reconciled at the price of the provider that answered (admission used the dearest).
    const realPrice = ctx.chosen?.price ?? acc.admissionPrice;
    const billed = { ...reported, promptTokens: prompt, completionTokens: completion };
    const costPicos = realPrice ? costOf(realPrice, billed) : 0n;
    if (acc.reservation && acc.tokenLimited) {
      const delta = { tokens: prompt + completion - acc.reservation.tokens, cost: acc.costLimited ? picosToMicrosCeil(costPicos) - acc.reservation.cost : 0 };
      if (delta.tokens !== 0 || delta.cost !== 0) {
        this.deps.limiter.adjust(acc.reservation, delta, this.now()).catch((err: unknown) => {
          this.deps.logger.warn({ err: err instanceof Error ? err.message : String(err), requestId: ctx.requestId }, 'limit correction failed');
        });
      }
    }
    if (ctx.planId !== undefined) this.byPlan.delete(ctx.planId);
    for (const { scopeId, reservation } of acc.providerReservations) {
      // The attempt that answered is charged its real usage; attempts that failed over release theirs.
      const used = ok && scopeId === ctx.chosen?.limitScopeId ? prompt + completion : 0;
      const delta = used - reservation.tokens;
      if (delta !== 0) this.deps.limiter.adjust(reservation, { tokens: delta, cost: 0 }, this.now()).catch(() => undefined);
    }
    if (!ctx.chosen) return; // never reached a provider: nothing was used
    if (!realPrice) this.unpriced.note(ctx.model, ctx.chosen.upstreamModel, ctx.chosen.provider.name);
    if (reported && ok && !acc.embeddings) this.history.record(acc.key.name, ctx.model, completion);
    const zone = acc.key.limitScopes[0]?.monthTimeZone ?? 'UTC';
    ctx.billed = { promptTokens: prompt, completionTokens: completion, costPicos };
    const nowMs = this.now();
    const template = templateOf(ctx);
    this.deps.usage.record({
      key: acc.key.name,
      lineage: acc.key.lineage,
      ...(ctx.tenant ? { tenant: ctx.tenant.name } : {}),
      ...(template ? { template: template.name, ...(template.version !== undefined ? { templateVersion: template.version } : {}) } : {}),
      model: ctx.model,
      upstreamModel: ctx.chosen.upstreamModel,
      provider: ctx.chosen.provider.name,
      promptTokens: prompt,
      completionTokens: completion,
      ...(billed.cachedReadTokens ? { cachedReadTokens: billed.cachedReadTokens } : {}),
      ...(billed.cachedWriteTokens ? { cachedWriteTokens: billed.cachedWriteTokens } : {}),
      ...(billed.reasoningTokens ? { reasoningTokens: billed.reasoningTokens } : {}),
      costPicos,
      latencyMs: Number(process.hrtime.bigint() - ctx.startedNs) / 1e6,
      status: ctx.status ?? (cancelled ? 499 : 0),
      month: monthSpan(nowMs, zone).id,
      atMs: nowMs,
      reported: reported !== undefined,
    });
  }
}

/** Adds `"stream_options":{"include_usage":true}` as the body's first member (a byte splice). */
export function withStreamUsage(raw: Buffer): Buffer {
  const open = raw.indexOf(0x7b);
  if (open < 0) return raw;
  return Buffer.concat([raw.subarray(0, open + 1), STREAM_OPTIONS, raw.subarray(open + 1)]);
}

/** Tokens and money a refused request asked for (with the completion the limiter tried). */
function requested(cost: Cost, completion: number): { tokens: number; cost: number } {
  const sh = cost.shrink;
  if (!sh) return { tokens: cost.tokens, cost: cost.cost ?? 0 };
  return { tokens: sh.promptTokens + completion, cost: sh.promptCost + Math.ceil(completion * sh.completionRate) };
}

/** Calendar budgets answer with OpenAI's quota error; rolling windows with the rate limit error. */
export function isQuota(c: LimitCheck): boolean {
  return c.windowMs === 0 && c.unit !== 'requests';
}

/**
 * Which field caps the answer: the one(s) the client set, else `max_completion_tokens` when every
 * provider of the model speaks OpenAI's own API (its reasoning models refuse `max_tokens`), else
 * `max_tokens` (what OpenAI-compatible engines read).
 */
export function maxTokensField(body: RequestBody, tiers: readonly RouteTier[] | undefined, responses = false): ('max_tokens' | 'max_completion_tokens' | 'max_output_tokens')[] {
  // The Responses API has one cap of its own.
  if (responses) return ['max_output_tokens'];
  const set: ('max_tokens' | 'max_completion_tokens' | 'max_output_tokens')[] = [];
  if (body.json['max_completion_tokens'] !== undefined) set.push('max_completion_tokens');
  if (body.json['max_tokens'] !== undefined) set.push('max_tokens');
  if (set.length > 0) return set;
  const openai = tiers !== undefined && tiers.every((t) => t.routes.every((r) => r.provider.type === 'openai' || r.provider.type === 'azure-openai'));
  return [openai ? 'max_completion_tokens' : 'max_tokens'];
}

/**
 * The body with its answer capped at `cap` tokens. Re-serialised from the parsed object (a capped
 * request is rare: only at the edge of a budget), keeping the gateway's stream_options.
 */
export function withMaxTokens(body: RequestBody, cap: number, injectedUsage: boolean, fields: readonly string[]): RequestBody {
  const json: Record<string, unknown> = { ...body.json };
  if (injectedUsage) json['stream_options'] = { include_usage: true };
  for (const f of fields) json[f] = cap;
  return { ...body, json, raw: Buffer.from(JSON.stringify(json)), rewritten: true };
}
