/**
 * One ext_proc stream = one HTTP request. An explicit state machine: each Envoy message is handled
 * by the handler of the current phase, answers go back in order, and the request is finalised
 * exactly once (stream end, cancel and error can race).
 */
import { OrderedResponder } from './answer-chain.js';
import { randomUUID } from 'node:crypto';
import type { ServerDuplexStream } from '@grpc/grpc-js';
import type { ConfigStore } from '../config/store.js';
import { gatewayError, isGatewayError, type ClientApi, type GatewayError } from '../errors.js';
import type { ProcessingRequest__Output } from '../generated/envoy/service/ext_proc/v3/ProcessingRequest.js';
import type { ProcessingResponse } from '../generated/envoy/service/ext_proc/v3/ProcessingResponse.js';
import type { Logger } from '../observability/logger.js';
import { extprocErrorsTotal, timeToFirstTokenSeconds } from '../observability/metrics.js';
import type { RequestContext } from '../pipeline/context.js';
import { isLocalAnswer, planForward, type Planned } from '../pipeline/forward.js';
import { lookupStored, routeOf, storedRewrite } from '../pipeline/stored-responses.js';
import { upstreamFor } from '../providers/front-doors.js';
import type { ApiRoute } from '../pipeline/route.js';
import { RESPONSE_ID, type ResponseDirectory } from '../responses/directory.js';
import type { ResponseIdCapture } from '../responses/id-capture.js';
import { directRewrite } from '../pipeline/dispatch.js';
import { apiOfRequest, classifyRoute } from '../pipeline/route.js';
import type { BodyDecision, LimitsStep } from '../pipeline/limits.js';
import { classify, finalErrorClass } from '../routing/health.js';
import type { AttemptRecord } from '../routing/plan.js';
import type { UpstreamRewrite } from '../pipeline/rewrite.js';
import { admitHeaders } from '../pipeline/request-headers.js';
import type { GuardrailStep } from '../guardrails/step.js';
import { hostOf } from '../tenancy/hosts.js';
import { EXTPROC_ATTRIBUTES, SOURCE_ADDRESS } from '../pipeline/client-address.js';
import type { ResilientRouter } from '../routing/router.js';
import { headerMap } from './headers.js';
import {
  continueRequestHeaders,
  continueResponseBody,
  forwardRequestHeaders,
  errorResponse,
  forwardRequestBody,
  jsonResponse,
  replaceBufferedResponseBody,
  replaceResponseBody,
  responseHeadersWith,
  targetMetadata,
} from './responses.js';

/** Where a request is in its life. */
export type Phase = 'request_headers' | 'request_body' | 'response_headers' | 'response_body' | 'done';

/** What a stream needs from the process. */
export interface StreamDeps {
  readonly store: ConfigStore;
  readonly logger: Logger;
  /** Called once per request with its final state. */
  readonly onFinalize: (ctx: RequestContext, outcome: StreamOutcome) => void;
  /** Provider choice and failover, shared with the attempt stage (src/routing/). */
  readonly router: ResilientRouter;
  readonly now?: () => number;
  /** Limits, token accounting and usage records (pipeline/limits.ts); absent = none. */
  readonly limits?: LimitsStep;
  /** Content guardrails (src/guardrails/step.ts); absent = none. */
  readonly guardrails?: GuardrailStep;
  /** Where stored Responses API responses live (src/responses/directory.ts); absent = stored responses are not served. */
  readonly responses?: ResponseDirectory;
}

/** How the stream ended, from our side. */
export type StreamOutcome = 'completed' | 'cancelled' | 'error';

const EMPTY_BODY = Buffer.alloc(0);
/** Envoy's try count on a response (envoy.yaml include_attempt_count_in_response); not for clients. */
const ATTEMPT_COUNT_HEADER = 'x-envoy-attempt-count';
const DROP_ATTEMPT_COUNT: readonly string[] = [ATTEMPT_COUNT_HEADER];
const GUARDED_DROP: readonly string[] = ['content-length'];
const GUARDED_DROP_WITH_COUNT: readonly string[] = [ATTEMPT_COUNT_HEADER, 'content-length'];
const CONTINUE_BODY: BodyDecision = { kind: 'continue' };
const OWN_REPLY: NonNullable<ProcessingResponse['dynamicMetadata']> = { fields: { tollgate: { structValue: { fields: { reply: { boolValue: true } } } } } };

type Duplex = ServerDuplexStream<ProcessingRequest__Output, ProcessingResponse>;
type Answer = ProcessingResponse | Promise<ProcessingResponse>;

export class ExtProcStream {
  private phase: Phase = 'request_headers';
  private ctx: RequestContext | undefined;
  private readonly responder: OrderedResponder<ProcessingRequest__Output, ProcessingResponse>;
  private finalized = false;
  private contentType: string | undefined;
  /** The client's API (from the path): the shape of every error this request gets. */
  private api: ClientApi = 'openai';
  private readonly startedNs = process.hrtime.bigint();
  /** The response body comes through only so its response id can be recorded (nothing else reads it). */
  private bodyForIdOnly = false;

  constructor(
    private readonly deps: StreamDeps,
    call: Duplex,
  ) {
    this.responder = new OrderedResponder(call, (msg) => this.dispatch(msg), (err) => this.failClosed(err));
    call.on('data', (msg: ProcessingRequest__Output) => this.responder.receive(msg));
    call.on('end', () => {
      // Envoy half-closes (graceful close, see envoy.yaml) also when the client went away: if the
      // upstream response had not started yet, the request did not complete.
      this.finalize(this.phase === 'request_headers' || this.phase === 'request_body' || this.phase === 'response_headers' ? 'cancelled' : 'completed');
      call.end();
    });
    call.on('cancelled', () => this.finalize('cancelled'));
    call.on('error', () => this.finalize('error'));
  }

  private dispatch(msg: ProcessingRequest__Output): Answer {
    switch (msg.request) {
      case 'requestHeaders':
        return this.onRequestHeaders(msg);
      case 'requestBody':
        return this.onRequestBody(msg);
      case 'responseHeaders':
        return this.onResponseHeaders(msg);
      case 'responseBody':
        return this.onResponseBody(msg);
      default:
        throw new Error(`unexpected ext_proc message ${String(msg.request)} in phase ${this.phase}`);
    }
  }

  private onRequestHeaders(msg: ProcessingRequest__Output): Answer {
    const headers = headerMap(msg.requestHeaders?.headers);
    const snapshot = this.deps.store.current();
    const requestId = headers.get('x-request-id') || randomUUID();
    this.api = apiOfRequest(headers.get(':path') ?? '', headers.get('anthropic-version'));
    if (!snapshot) {
      return this.refuse(gatewayError('provider_unavailable', 'The gateway has no configuration loaded yet.'), requestId);
    }
    const ctx: RequestContext = { requestId, startedNs: this.startedNs, snapshot };
    this.ctx = ctx;
    this.contentType = headers.get('content-type');
    const anthropicVersion = this.api === 'anthropic' ? headers.get('anthropic-version') : undefined;
    if (anthropicVersion) ctx.anthropicVersion = anthropicVersion;
    const anthropicBeta = this.api === 'anthropic' ? headers.get('anthropic-beta') : undefined;
    if (anthropicBeta) ctx.anthropicBeta = anthropicBeta;
    if (!snapshot.tenants.empty) {
      const tenant = snapshot.tenants.tenantFor(hostOf(headers.get(':authority')));
      if (tenant) ctx.tenant = tenant;
    }
    const source = msg.attributes?.[EXTPROC_ATTRIBUTES]?.fields?.[SOURCE_ADDRESS]?.stringValue;
    // Known before authentication, so refusals are counted under their API too.
    const route = classifyRoute(headers.get(':method') ?? '', headers.get(':path') ?? '');
    if (!isGatewayError(route)) ctx.route = route;
    const decision = admitHeaders(headers, snapshot, this.now(), source, ctx.tenant);
    if (isGatewayError(decision)) return this.refuse(decision, requestId);
    ctx.key = decision.key;
    if (decision.kind === 'refuse') return this.refuse(decision.error, requestId);
    if (decision.kind === 'respond') {
      ctx.status = decision.status;
      this.phase = 'done';
      return jsonResponse(decision.status, decision.body, requestId);
    }
    ctx.route = decision.route;
    if (decision.kind === 'stored') return this.onStored(ctx, decision.route);
    if (msg.requestHeaders?.endOfStream) {
      return this.refuse(gatewayError('missing_body', 'The request body is empty; expected a JSON object.'), requestId);
    }
    this.phase = 'request_body';
    return continueRequestHeaders();
  }

  private onRequestBody(msg: ProcessingRequest__Output): Answer {
    const ctx = this.requireCtx();
    const body = msg.requestBody;
    if (!body?.endOfStream) throw new Error('request body must arrive buffered (processing mode BUFFERED)');
    const plan = planForward(ctx, body.body ?? Buffer.alloc(0), this.contentType, this.deps.router, this.deps.limits?.prepare, this.deps.guardrails?.request, this.deps.responses);
    // A previous_response_id is looked up in the response directory first (Redis: asynchronous).
    return plan instanceof Promise ? plan.then((p) => this.planned(ctx, p)) : this.planned(ctx, plan);
  }

  private planned(ctx: RequestContext, plan: Planned): Answer {
    if (isGatewayError(plan)) return this.refuse(plan, ctx.requestId);
    if (isLocalAnswer(plan)) {
      ctx.status = plan.status;
      this.phase = 'done';
      return jsonResponse(plan.status, plan.body, ctx.requestId, plan.headers);
    }
    // External moderation (a guardrail's hook) decides before any limit is charged.
    const moderated = this.deps.guardrails?.moderate(ctx);
    if (moderated) return moderated.then((refused) => (refused ? this.refuse(refused, ctx.requestId) : this.admitPlanned(ctx, plan)));
    return this.admitPlanned(ctx, plan);
  }

  /**
   * A request about a stored response (retrieve, delete, input items, cancel): found in the response
   * directory for this key, counted against its request-rate limits, and sent straight to the
   * provider and upstream model that created it. It has no body to read.
   */
  private onStored(ctx: RequestContext, route: ApiRoute & { kind: 'stored-response' }): Answer {
    const key = ctx.key;
    const directory = this.deps.responses;
    ctx.stored = { action: route.action, responseId: route.responseId };
    if (!key || !directory) return this.refuse(gatewayError('response_not_found', `Response with id '${route.responseId}' not found.`), ctx.requestId);
    return lookupStored(directory, route.responseId, key).then((entry) => {
      if (isGatewayError(entry)) return this.refuse(entry, ctx.requestId);
      const target = routeOf(ctx.snapshot, entry);
      if (!target) {
        return this.refuse(gatewayError('response_not_found', `Response with id '${route.responseId}' not found: the provider that stored it no longer serves its model.`), ctx.requestId);
      }
      ctx.model = entry.model;
      ctx.requestedModel = entry.model;
      ctx.chosen = target;
      const guarded = route.action === 'retrieve' || route.action === 'cancel' ? this.deps.guardrails?.storedResponse(ctx) : undefined;
      if (guarded) return this.refuse(guarded, ctx.requestId);
      const rewrite = storedRewrite(target, route.responseId, route.action, route.query, ctx.requestId, ctx.snapshot.resilience.maxAttempts);
      const send = (refused: GatewayError | undefined): ProcessingResponse => {
        if (refused) return this.refuse(refused, ctx.requestId);
        this.phase = 'response_headers';
        return forwardRequestHeaders(rewrite.setHeaders, rewrite.removeHeaders);
      };
      const admitted = this.deps.limits?.admitRequestOnly(ctx);
      return admitted instanceof Promise ? admitted.then(send) : send(admitted);
    });
  }

  /** A planned request: the key's limits (when configured), then out. */
  private admitPlanned(ctx: RequestContext, plan: UpstreamRewrite): Answer {
    const limits = this.deps.limits;
    if (!limits) {
      delete ctx.body;
      return this.forward(plan);
    }
    const admitted = limits.admit(ctx, plan);
    // A direct request also passes its one target's provider limits (the attempt stage's job otherwise).
    const next = (a: UpstreamRewrite | GatewayError): Answer => {
      const b = isGatewayError(a) ? a : this.withCappedBody(ctx, a);
      return ctx.attempt ? this.admitDirect(limits, b) : this.forward(b);
    };
    return admitted instanceof Promise ? admitted.then(next) : next(admitted);
  }

  /**
   * Admitted at the edge of a budget with a capped answer (pipeline/limits.ts): every attempt sends
   * the capped body (the plan's body), and a direct request's rewrite is rebuilt with it.
   */
  private withCappedBody(ctx: RequestContext, rewrite: UpstreamRewrite): UpstreamRewrite {
    const capped = ctx.accounting?.cappedBody;
    const plan = capped && ctx.planId !== undefined ? this.deps.router.plans.get(ctx.planId) : undefined;
    if (!capped || !plan) return rewrite;
    plan.body = capped;
    return ctx.attempt ? directRewrite(plan, ctx.attempt.candidate) : rewrite;
  }

  /** Time to first token of a stream: its first response body bytes (only inspected streams reach here). */
  private firstChunk(ctx: RequestContext): void {
    const now = process.hrtime.bigint();
    ctx.firstChunkNs = now;
    timeToFirstTokenSeconds.observe({ provider: ctx.chosen?.provider.name ?? '-', model: ctx.model ?? '-' }, Number(now - ctx.startedNs) / 1e9);
  }

  /** A direct request passed the key's limits: its only target's provider limits come next. */
  private admitDirect(limits: LimitsStep, rewrite: UpstreamRewrite | GatewayError): Answer {
    const ctx = this.requireCtx();
    const attempt = ctx.attempt;
    if (isGatewayError(rewrite) || !attempt || ctx.planId === undefined) return this.forward(rewrite);
    const gate = limits.admitAttempt(ctx.planId, attempt.candidate.route);
    if (gate instanceof Promise) return gate.then((refused) => this.forward(refused ?? rewrite));
    return this.forward(gate ?? rewrite);
  }

  private forward(plan: UpstreamRewrite | GatewayError): ProcessingResponse {
    const ctx = this.requireCtx();
    if (isGatewayError(plan)) return this.refuse(plan, ctx.requestId);
    this.phase = 'response_headers';
    if (ctx.attempt) ctx.sentNs = process.hrtime.bigint();
    // A direct request is tagged for Envoy's access log (attempt-log.ts): a stream that breaks after
    // its first byte counts against its target.
    return forwardRequestBody(plan.setHeaders, plan.removeHeaders, plan.body, ctx.attempt ? targetMetadata(ctx.attempt.candidate.id, this.api) : undefined);
  }

  private onResponseBody(msg: ProcessingRequest__Output): Answer {
    const ctx = this.ctx;
    const body = msg.responseBody;
    const chunk = body?.body ?? EMPTY_BODY;
    const end = body?.endOfStream ?? false;
    if (ctx?.idCapture) {
      const recorded = this.captureId(ctx, ctx.idCapture, chunk);
      // The bytes that carry the id go on once the directory holds it (one Redis write per created
      // response), so a retrieve sent to any replica right after the answer finds the response.
      if (recorded) return recorded.then(() => this.answerResponseBody(ctx, chunk, end, true));
      if (this.bodyForIdOnly && ctx.idCapture === undefined && !end) return this.letGo();
    }
    return this.answerResponseBody(ctx, chunk, end, false);
  }

  private answerResponseBody(ctx: RequestContext | undefined, chunk: Buffer, end: boolean, idJustRead: boolean): Answer {
    const limits = this.deps.limits;
    const guarded = ctx?.guard?.inspector !== undefined;
    if (idJustRead && this.bodyForIdOnly && !end) return this.letGo();
    if (!ctx || (!limits && !guarded)) return continueResponseBody();
    if (ctx.stream && ctx.firstChunkNs === undefined && chunk.length > 0 && ctx.status === 200) this.firstChunk(ctx);
    const decision = limits ? limits.responseBody(ctx, chunk, end) : CONTINUE_BODY;
    if (!guarded) return decision instanceof Promise ? decision.then((d) => this.bodyAnswer(d)) : this.bodyAnswer(decision);
    return decision instanceof Promise ? decision.then((d) => this.guardedAnswer(ctx, d, chunk, end)) : this.guardedAnswer(ctx, decision, chunk, end);
  }

  /**
   * The body came through only for its response id, which is now read (or given up on): this answer is
   * the stream's last, and Envoy sends the rest of the body (and any chunk it sent that we leave
   * unanswered) straight to the client, as it does for any stream nothing inspects. The request is
   * finalized now, like such a stream is once its response headers are answered.
   */
  private letGo(): ProcessingResponse {
    this.responder.endAfterThisAnswer();
    this.finalize('completed');
    return continueResponseBody();
  }

  /**
   * Reads a created response's id from its first bytes and records where it is stored and whose it
   * is; returns the write to wait for when the directory is shared.
   */
  private captureId(ctx: RequestContext, capture: ResponseIdCapture, chunk: Buffer): Promise<void> | undefined {
    const id = capture.push(chunk);
    if (!capture.done) return undefined;
    delete ctx.idCapture;
    const key = ctx.key;
    const chosen = ctx.chosen;
    if (id === undefined || !key || !chosen || ctx.model === undefined || !RESPONSE_ID.test(id)) return undefined;
    return this.deps.responses?.put(id, { provider: chosen.provider.name, upstreamModel: chosen.upstreamModel, model: ctx.model, consumer: key.name, lineage: key.lineage });
  }

  /** The guardrails see what the limits step lets through (usage already metered on the upstream bytes). */
  private guardedAnswer(ctx: RequestContext, d: BodyDecision, chunk: Buffer, end: boolean): Answer {
    const guardrails = this.deps.guardrails;
    if (!guardrails || d.kind === 'abort') return this.bodyAnswer(d);
    if (ctx.guard?.cut) {
      // The client already has the error event: stop the upstream (an immediate response resets the stream).
      return end ? replaceResponseBody(EMPTY_BODY) : errorResponse(gatewayError('content_policy_violation', 'The response was stopped by the content policy.'), ctx.requestId);
    }
    const input = d.kind === 'replace' ? d.body : chunk;
    const out = guardrails.responseBody(ctx, input, end);
    if (out === undefined) return replaceResponseBody(EMPTY_BODY); // held until the end of a non-streamed body
    // Nothing changed (a clean buffered answer): no body mutation to encode and send back.
    if (out.kind === 'bytes') {
      const body = out.body;
      const send = (): ProcessingResponse => {
        if (body === input) return this.bodyAnswer(d);
        return ctx.stream ? replaceResponseBody(body) : replaceBufferedResponseBody(body);
      };
      // A whole non-streamed answer may still go to a moderation hook (moderation.responses).
      const judged = end && !ctx.stream ? guardrails.moderateAnswer(ctx) : undefined;
      return judged ? judged.then((refused) => (refused ? this.refuse(refused, ctx.requestId) : send())) : send();
    }
    ctx.errorCode = out.error.code;
    // A non-streamed body arrives buffered, before its headers went out: a proper 400 instead.
    if (!ctx.stream) return this.refuse(out.error, ctx.requestId);
    return replaceResponseBody(out.body);
  }

  private bodyAnswer(d: BodyDecision): ProcessingResponse {
    if (d.kind === 'continue') return continueResponseBody();
    if (d.kind === 'replace') return replaceResponseBody(d.body);
    // The client already received an error event; an immediate response resets the stream so the
    // upstream stops generating.
    const ctx = this.requireCtx();
    return errorResponse(gatewayError('rate_limit_exceeded', 'The token budget ran out during this response.'), ctx.requestId, this.api);
  }

  private onResponseHeaders(msg: ProcessingRequest__Output): Answer {
    const ctx = this.requireCtx();
    const headers = headerMap(msg.responseHeaders?.headers);
    const status = Number(headers.get(':status'));
    ctx.status = Number.isFinite(status) ? status : 0;
    ctx.responseHeadersNs = process.hrtime.bigint();
    const exhausted = ctx.attempt ? this.directResult(ctx, ctx.attempt, headers) : undefined;
    this.settleRouting(ctx);
    if (exhausted) return this.refuse(exhausted, ctx.requestId);
    const endOfStream = msg.responseHeaders?.endOfStream ?? false;
    this.phase = endOfStream ? 'done' : 'response_body';
    // A deleted stored response is forgotten; an answer that will not be stored has no id to record.
    if (ctx.stored?.action === 'delete' && ctx.status === 200) this.deps.responses?.delete(ctx.stored.responseId);
    // Translated providers (chat completions underneath) store nothing: their answers are not recorded.
    if (ctx.idCapture && (ctx.status !== 200 || endOfStream || !ctx.chosen || upstreamFor('responses', ctx.chosen.provider.type).kind !== 'passthrough')) delete ctx.idCapture;
    const capture = ctx.idCapture !== undefined;
    const limits = this.deps.limits?.responseHeaders(ctx, ctx.status, endOfStream);
    const inspection = this.deps.guardrails?.responseHeaders(ctx, ctx.status, endOfStream, headers.get('content-type')) ?? 'none';
    if (inspection === 'buffered') {
      // Envoy holds a BUFFERED body's headers and sets content-length to the body it finally sends;
      // keeping it spares the client a chunked answer (about half the throughput, measured).
      return responseHeadersWith(limits?.headers, true, headers.has(ATTEMPT_COUNT_HEADER) ? DROP_ATTEMPT_COUNT : [], 'BUFFERED');
    }
    if (inspection === 'streamed') {
      // A stream's chunks may change length: no content-length may stand.
      const remove = headers.has(ATTEMPT_COUNT_HEADER) ? GUARDED_DROP_WITH_COUNT : GUARDED_DROP;
      return responseHeadersWith(limits?.headers, true, remove, 'STREAMED');
    }
    const inspect = limits?.inspectBody ?? false;
    // Neither limits nor guardrails read this body: once the id is read the stream is let go (letGo).
    this.bodyForIdOnly = capture && !inspect;
    return responseHeadersWith(limits?.headers, inspect || capture, headers.has(ATTEMPT_COUNT_HEADER) ? DROP_ATTEMPT_COUNT : []);
  }

  /**
   * A direct request's outcome (the attempt stage reports it for the others): health and balancing
   * learn the result, and every try Envoy retried before it counts as a failure of the same target;
   * when every try failed, the client gets one summary error.
   */
  private directResult(ctx: RequestContext, attempt: AttemptRecord, headers: ReadonlyMap<string, string>): GatewayError | undefined {
    const plan = ctx.planId === undefined ? undefined : this.deps.router.plans.get(ctx.planId);
    if (!plan) return undefined;
    const ttfbMs = Number(process.hrtime.bigint() - (ctx.sentNs ?? ctx.startedNs)) / 1e6;
    const result = classify(ctx.status ?? 0, headers.get('retry-after'), ttfbMs);
    const tries = Number(headers.get(ATTEMPT_COUNT_HEADER) ?? '1');
    if (Number.isFinite(tries) && tries > 1) {
      ctx.attempts = tries;
      this.deps.router.retried(plan, attempt, tries - 1, result.ok);
    }
    this.deps.router.result(plan, attempt, result);
    if (result.ok) return undefined;
    return this.deps.router.exhaustedDirect(plan, tries, ctx.status ?? 0, finalErrorClass(ctx.status ?? 0, headers.get('x-amzn-errortype')));
  }

  /** The response is going downstream: record which attempt won; no attempt can follow. */
  private settleRouting(ctx: RequestContext): void {
    const plan = ctx.planId === undefined ? undefined : this.deps.router.plans.get(ctx.planId);
    if (!plan) return;
    this.deps.router.settle(plan);
    ctx.attempts ??= plan.attempts.length;
    const last = plan.winner ?? plan.attempts.at(-1)?.candidate;
    if (last) {
      ctx.chosen = last.route;
      ctx.targetId = last.id;
    }
  }

  /** A finished 200 stream with real usage: its tokens per second feed latency-aware balancing. */
  private feedThroughput(ctx: RequestContext): void {
    const usage = ctx.accounting?.meter?.usage;
    if (!usage || !ctx.stream || ctx.status !== 200 || ctx.targetId === undefined || ctx.responseHeadersNs === undefined) return;
    const ms = Number(process.hrtime.bigint() - ctx.responseHeadersNs) / 1e6;
    this.deps.router.health.recordTokens(ctx.targetId, usage.completionTokens, ms);
  }

  private refuse(error: GatewayError, requestId: string): ProcessingResponse {
    if (this.ctx) {
      this.ctx.errorCode = error.code;
    }
    this.phase = 'done';
    const response = errorResponse(error, requestId, this.api);
    if (this.ctx) this.ctx.status = response.immediateResponse?.status?.code as number;
    // Envoy's local reply mappers leave replies tagged like this alone (envoy.yaml).
    response.dynamicMetadata = OWN_REPLY;
    return response;
  }

  /** An unexpected exception is a bug: log it with the request id and refuse the request. */
  private failClosed(err: unknown): ProcessingResponse {
    const requestId = this.ctx?.requestId ?? 'unknown';
    extprocErrorsTotal.inc();
    this.deps.logger.error({ err, requestId, phase: this.phase }, 'ext_proc handler failed; refusing the request');
    return this.refuse(gatewayError('internal_error', 'The gateway failed to process this request.'), requestId);
  }

  private requireCtx(): RequestContext {
    if (!this.ctx) throw new Error(`no request context in phase ${this.phase}`);
    return this.ctx;
  }

  private now(): number {
    return this.deps.now ? this.deps.now() : Date.now();
  }

  /** Runs once per request, whichever of end, cancel or error comes first. */
  private finalize(outcome: StreamOutcome): void {
    if (this.finalized) return;
    this.finalized = true;
    this.phase = 'done';
    if (this.ctx?.planId !== undefined) {
      if (this.ctx.attempts === undefined) this.settleRouting(this.ctx);
      this.deps.router.close(this.ctx.planId);
    }
    if (this.ctx?.attempt) this.deps.router.end(this.ctx.attempt);
    if (!this.ctx) return;
    try {
      this.deps.limits?.finalize(this.ctx, outcome !== 'completed');
      if (outcome === 'completed') this.feedThroughput(this.ctx);
    } catch (err) {
      this.deps.logger.error({ err, requestId: this.ctx.requestId }, 'usage accounting failed');
    }
    this.deps.onFinalize(this.ctx, outcome);
  }
}
