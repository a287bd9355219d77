/**
 * The attempt stage: one ext_proc stream per upstream ATTEMPT (Envoy's internal listener
 * `tollgate_attempt`, entered once per try by the outer router's retry policy). It asks the router
 * where this attempt goes, rewrites the request for that provider, and reports the attempt's outcome
 * (response headers, end of response) to the health tracker. A state machine like ExtProcStream:
 * answers in order, the attempt is ended exactly once.
 */
import { OrderedResponder } from './answer-chain.js';
import type { ServerDuplexStream } from '@grpc/grpc-js';
import { gatewayError, isGatewayError, type GatewayError } from '../errors.js';
import type { ProcessingRequest__Output } from '../generated/envoy/service/ext_proc/v3/ProcessingRequest.js';
import type { ProcessingResponse } from '../generated/envoy/service/ext_proc/v3/ProcessingResponse.js';
import type { Logger } from '../observability/logger.js';
import { attemptRewrite } from '../pipeline/attempt.js';
import type { LimitsStep } from '../pipeline/limits.js';
import type { UpstreamRewrite } from '../pipeline/rewrite.js';
import { ResponseTranslation } from '../pipeline/translation.js';
import { apiOf } from '../pipeline/route.js';
import { classify, finalErrorClass } from '../routing/health.js';
import { PLAN_HEADER, type AttemptRecord, type RequestPlan } from '../routing/plan.js';
import type { AttemptChoice, ResilientRouter } from '../routing/router.js';
import { headerMap, setHeader } from './headers.js';
import { continueResponseHeaders, errorResponse, forwardRequestBody, headersOnly as translatedHeadersOnly, heldResponseHeaders, replaceHeldResponseBody, replaceResponseBody, targetMetadata, translatedResponseHeaders } from './responses.js';
import { estimatedCountBody } from '../pipeline/forward.js';

const EMPTY_BODY = Buffer.alloc(0);

type Phase = 'request_headers' | 'request_body' | 'response_headers' | 'response' | 'done';
type Duplex = ServerDuplexStream<ProcessingRequest__Output, ProcessingResponse>;
type Answer = ProcessingResponse | Promise<ProcessingResponse>;

export interface AttemptStreamDeps {
  readonly router: ResilientRouter;
  readonly logger: Logger;
  /** Provider protection limits per attempt (pipeline/limits.ts); absent = none. */
  readonly limits?: LimitsStep;
}

export class AttemptStream {
  private phase: Phase = 'request_headers';
  private plan: RequestPlan | undefined;
  private attempt: AttemptRecord | undefined;
  private rewrite: UpstreamRewrite | undefined;
  /** Set when this attempt's provider API is translated (its response is rewritten chunk by chunk). */
  private translation: ResponseTranslation | undefined;
  /** The response body comes whole (BUFFERED) and decides the status (TranslatedHeaders.held). */
  private held = false;
  /** `retry-after` for a final throttled or overloaded answer that came without one (the gateway's cool-down). */
  private retryAfter: string | undefined;
  private sentNs = 0n;
  private readonly responder: OrderedResponder<ProcessingRequest__Output, ProcessingResponse>;
  private ended = false;

  constructor(
    private readonly deps: AttemptStreamDeps,
    call: Duplex,
  ) {
    this.responder = new OrderedResponder(call, (msg) => this.dispatch(msg), (err) => this.failClosed(err));
    call.on('data', (msg: ProcessingRequest__Output) => this.responder.receive(msg));
    call.on('end', () => {
      this.end();
      call.end();
    });
    call.on('cancelled', () => this.end());
    call.on('error', () => this.end());
  }

  private dispatch(msg: ProcessingRequest__Output): Answer {
    switch (msg.request) {
      case 'requestHeaders':
        return this.onRequestHeaders(msg);
      case 'requestBody':
        return this.onRequestBody();
      case 'responseHeaders':
        return this.onResponseHeaders(msg);
      case 'responseBody':
        return this.onResponseBody(msg);
      default:
        throw new Error(`unexpected ext_proc message ${String(msg.request)} in attempt phase ${this.phase}`);
    }
  }

  private onRequestHeaders(msg: ProcessingRequest__Output): Answer {
    const headers = headerMap(msg.requestHeaders?.headers);
    const plan = this.deps.router.plans.get(headers.get(PLAN_HEADER) ?? '');
    if (!plan) {
      // Only the request stage sends requests here; a missing plan is a bug or an expired request.
      return this.refuse(gatewayError('internal_error', 'The gateway lost track of this request.'), headers.get('x-request-id') ?? 'unknown');
    }
    this.plan = plan;
    const choice = this.deps.router.next(plan);
    if (choice instanceof Promise) return choice.then((c) => this.route(c));
    return this.route(choice);
  }

  private route(choice: AttemptChoice | GatewayError): Answer {
    const plan = this.plan as RequestPlan;
    if (isGatewayError(choice)) return this.refuse(choice, plan.requestId);
    this.attempt = choice.attempt;
    const rewrite = attemptRewrite(plan, choice.attempt.candidate);
    // Signed provider APIs (AWS SigV4) build their rewrite asynchronously.
    if (rewrite instanceof Promise) return rewrite.then((r) => this.rewritten(choice, r));
    return this.rewritten(choice, rewrite);
  }

  private rewritten(choice: AttemptChoice, rewrite: UpstreamRewrite | GatewayError): Answer {
    const plan = choice.plan;
    // The provider's API cannot take this request (translated providers): a final 400, nothing sent.
    if (isGatewayError(rewrite)) return this.refuse(rewrite, plan.requestId);
    this.rewrite = rewrite;
    if (rewrite.translation) {
      const created = Math.floor(Date.now() / 1000);
      this.translation = new ResponseTranslation(rewrite.translation, {
        created,
        includeUsage: rewrite.translation.includeUsage,
        model: rewrite.translation.upstreamModel,
        ...(rewrite.translation.base64Embeddings ? { base64Embeddings: true } : {}),
        ...(rewrite.translation.jsonResponse ? { jsonResponse: true } : {}),
      }, plan.operation === 'messages/count_tokens' ? countEstimate(plan, rewrite.translation.upstreamModel) : undefined);
    }
    const gate = this.deps.limits?.admitAttempt(plan.id, choice.attempt.candidate.route);
    if (gate instanceof Promise) return gate.then((refused) => (refused ? this.overLimit(refused, choice) : this.proceed(choice)));
    if (gate) return this.overLimit(gate, choice);
    return this.proceed(choice);
  }

  /**
   * The target's provider protection limit refused this attempt. With another provider for the
   * model and attempts left, answer a retriable 429 (Envoy retries; the router prefers targets this
   * request has not tried, so the next attempt goes elsewhere). Otherwise the 429 naming the limit
   * is final.
   */
  private overLimit(error: GatewayError, choice: AttemptChoice): ProcessingResponse {
    const plan = choice.plan;
    const scope = choice.attempt.candidate.route.limitScopeId;
    const elsewhere = plan.tiers.some((t) => t.routes.some((r) => r.limitScopeId !== scope));
    if (!elsewhere || plan.attempts.length >= plan.config.maxAttempts) return this.refuse(error, plan.requestId);
    // Recorded on the attempt (the router prefers untried targets next) but not in the health
    // tracker: the limit is this model's at this provider, not the provider's health.
    choice.attempt.result = { ok: false, reason: 'http_429', status: 429 };
    this.phase = 'done';
    return errorResponse(error, plan.requestId, apiOf(plan.operation));
  }

  private proceed(choice: AttemptChoice): Answer {
    const go = (): ProcessingResponse => this.afterHeaders();
    if (choice.backoffMs <= 0) return go();
    return new Promise((resolve) => setTimeout(() => resolve(go()), choice.backoffMs));
  }

  /** Body unchanged (same model name upstream): rewrite the headers now and skip the body phase. */
  private afterHeaders(): ProcessingResponse {
    const rewrite = this.rewrite as UpstreamRewrite;
    this.sentNs = process.hrtime.bigint();
    if (rewrite.body === undefined) {
      this.phase = 'response_headers';
      this.rewrite = undefined; // sent: an open stream holds nothing of its request

      return {
        requestHeaders: {
          response: {
            status: 'CONTINUE',
            headerMutation: { setHeaders: rewrite.setHeaders.map(([k, v]) => setHeader(k, v)), removeHeaders: [...rewrite.removeHeaders] },
            clearRouteCache: true,
          },
        },
        modeOverride: { requestBodyMode: 'NONE', responseHeaderMode: 'SEND' },
        dynamicMetadata: targetMetadata(this.attempt?.candidate.id ?? '', apiOf((this.plan as RequestPlan).operation)),
      };
    }
    this.phase = 'request_body';
    return { requestHeaders: {} };
  }

  private onRequestBody(): Answer {
    const rewrite = this.rewrite;
    if (!rewrite) throw new Error('attempt body before its headers were routed');
    this.phase = 'response_headers';
    // Sent now: an open stream must not hold its request body (a translated body can be a view of a
    // much larger buffer: measured 20 KiB per open stream when it was kept).
    this.rewrite = undefined;
    // Tags the attempt for Envoy's access log (src/extproc/attempt-log.ts): `tollgate.target`.
    return forwardRequestBody(rewrite.setHeaders, rewrite.removeHeaders, rewrite.body, targetMetadata(this.attempt?.candidate.id ?? '', apiOf((this.plan as RequestPlan).operation)));
  }

  private onResponseHeaders(msg: ProcessingRequest__Output): Answer {
    const plan = this.plan;
    const attempt = this.attempt;
    if (plan && attempt) {
      const headers = headerMap(msg.responseHeaders?.headers);
      const status = Number(headers.get(':status'));
      const ttfbMs = Number(process.hrtime.bigint() - this.sentNs) / 1e6;
      this.deps.router.result(plan, attempt, classify(status, headers.get('retry-after'), ttfbMs));
      // The last allowed attempt failed too: the client gets one clear error instead of whatever
      // the last provider said (Envoy will not retry it: no retries are left), unless it was
      // throttled or overloaded: that answer goes through (in the client's API), as the provider's.
      const final = finalErrorClass(status, headers.get('x-amzn-errortype'));
      const exhausted = this.deps.router.exhausted(plan, attempt, final);
      if (exhausted) {
        this.phase = 'done';
        return errorResponse(exhausted, plan.requestId, apiOf(plan.operation));
      }
      if (final && attempt.number >= plan.config.maxAttempts && !headers.has('retry-after')) {
        const wait = this.deps.router.retryAfterSeconds(plan);
        if (wait !== undefined) this.retryAfter = String(wait);
      }
    }
    this.phase = 'response';
    const extra: readonly (readonly [string, string])[] = this.retryAfter === undefined ? [] : [['retry-after', this.retryAfter]];
    if (!this.translation) return extra.length === 0 ? continueResponseHeaders() : translatedHeadersOnly(extra);
    const headers = headerMap(msg.responseHeaders?.headers);
    const t = this.translation.headers(Number(headers.get(':status')), headers.get('content-type'), headers.get('x-amzn-errortype'));
    // A native answer already in the client's API: its body is not read.
    if (t.passes) return extra.length === 0 ? continueResponseHeaders() : translatedHeadersOnly(extra);
    if (t.held) {
      this.held = true;
      return heldResponseHeaders();
    }
    return translatedResponseHeaders(t.status, [...t.setHeaders, ...extra], t.removeHeaders);
  }

  /** Only translated attempts ask for their body (mode_override): each chunk is replaced by its translation. */
  private onResponseBody(msg: ProcessingRequest__Output): ProcessingResponse {
    const translation = this.translation;
    if (!translation) return { responseBody: {} };
    const body = msg.responseBody;
    if (this.held) {
      const answer = translation.held(body?.body ?? EMPTY_BODY);
      return replaceHeldResponseBody(answer.status, answer.setHeaders, answer.body);
    }
    return replaceResponseBody(translation.body(body?.body ?? EMPTY_BODY, body?.endOfStream ?? false));
  }

  private refuse(error: GatewayError, requestId: string): ProcessingResponse {
    this.phase = 'done';
    const response = errorResponse(error, requestId, this.plan ? apiOf(this.plan.operation) : 'openai');
    // A refusal here is final: tell the outer router not to retry it (the outer stage keeps the
    // client-facing answer as it is).
    response.immediateResponse?.headers?.setHeaders?.push(setHeader('x-envoy-ratelimited', 'true'));
    return response;
  }

  private failClosed(err: unknown): ProcessingResponse {
    this.deps.logger.error({ err, requestId: this.plan?.requestId, phase: this.phase }, 'attempt stage failed; refusing the attempt');
    return this.refuse(gatewayError('internal_error', 'The gateway failed to process this request.'), this.plan?.requestId ?? 'unknown');
  }

  /**
   * Envoy closes the side stream when the attempt's HTTP stream ends (response finished, broke
   * off, or the attempt was abandoned). Runs once.
   */
  private end(): void {
    if (this.ended) return;
    this.ended = true;
    this.phase = 'done';
    if (this.attempt) this.deps.router.end(this.attempt);
  }
}

/**
 * count_tokens: the gateway's estimate of the request, computed only if the provider refuses to count
 * for the model (ResponseTranslation.held). Undefined when the request body is gone or does not translate.
 */
function countEstimate(plan: RequestPlan, upstreamModel: string): () => string | undefined {
  return () => {
    const body = plan.body;
    if (!body) return undefined;
    const counted = estimatedCountBody(body, upstreamModel);
    return isGatewayError(counted) ? undefined : counted;
  };
}
