/**
 * The guardrail step of a request: picks the guardrails for the key and model (one snapshot per
 * request), checks the request body before it is planned, and inspects the response body (streamed
 * or not) on its way to the client. Every finding acted on is counted and logged with the rule, the
 * key and the request id, never with the matched text.
 */
import type { RequestContext } from '../pipeline/context.js';
import type { RequestBody } from '../pipeline/request-body.js';
import { gatewayError, type ClientApi, type GatewayError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { guardrailDecisionsTotal } from '../observability/metrics.js';
import { selectGuardrails, type CompiledGuardrail } from './compile.js';
import { moderate, type CompiledModeration, type ModerationResult } from './moderation.js';
import { checkRequest } from './request.js';
import { JsonGuard, SseGuard, type GuardOutput } from './response.js';
import type { Finding } from './scan.js';

/** Operations whose answers the response inspection understands (chat completions, Anthropic messages, Responses). */
const INSPECTED_OPERATIONS: ReadonlySet<string> = new Set(['chat/completions', 'messages', 'responses', 'embeddings', 'messages/count_tokens']);

/** How the response body must reach the gateway for this request. */
export type ResponseInspection = 'none' | 'streamed' | 'buffered';

/** Per-request guardrail state (RequestContext.guard). */
export class RequestGuard {
  inspector: SseGuard | JsonGuard | undefined;
  /** A block ended the response: nothing more may reach the client. */
  cut = false;
  private logged: Set<string> | undefined;

  constructor(
    readonly consumer: string,
    readonly requestId: string,
    readonly response: readonly CompiledGuardrail[],
    private readonly logger: Logger,
  ) {}

  /** Request texts for the external moderation hooks, and the guardrails that have one. */
  moderation: { readonly hooks: readonly CompiledGuardrail[]; readonly texts: readonly string[] } | undefined;

  /** Response guardrails whose hook also judges non-streamed answers (moderation.responses). */
  answerHooks: readonly CompiledGuardrail[] = [];

  /** Counts a finding and logs the first of each (guardrail, rule, action, phase) of this request. */
  record(f: Finding, phase: 'request' | 'response'): void {
    this.decide(f.guardrail.name, f.rule.detector.rule, f.rule.action, phase);
  }

  /** Counts and logs one decision (see record). `extra` fields are logged with the first one. */
  decide(guardrail: string, rule: string, action: string, phase: 'request' | 'response', extra?: Readonly<Record<string, unknown>>): void {
    const labels = { consumer: this.consumer, guardrail, rule, action, phase };
    guardrailDecisionsTotal.inc(labels);
    const id = `${labels.guardrail}\u0000${labels.rule}\u0000${labels.action}\u0000${phase}`;
    this.logged ??= new Set();
    if (this.logged.has(id)) return;
    this.logged.add(id);
    this.logger.info({ requestId: this.requestId, ...labels, ...extra }, 'guardrail decision');
  }
}

export class GuardrailStep {
  constructor(private readonly deps: { readonly logger: Logger }) {}

  /**
   * planForward hook, after model mapping: checks (and masks) the request text; keeps what the
   * response check needs on the context. Synchronous.
   */
  readonly request = (ctx: RequestContext, body: RequestBody): RequestBody | GatewayError => {
    const key = ctx.key;
    if (!key || !ctx.model) return body;
    const selected = selectGuardrails(ctx.snapshot.guardrails, key, ctx.model, ctx.tenant?.guardrails);
    if ('missing' in selected) {
      this.deps.logger.error({ requestId: ctx.requestId, consumer: key.name, guardrail: selected.missing }, 'key references a guardrail the GatewayConfig does not define; refusing');
      return gatewayError('internal_error', 'A content guardrail configured for this API key is missing on the gateway; the request was refused.');
    }
    if (selected.request.length === 0 && selected.response.length === 0) return body;
    // An operation whose answers the inspection cannot read: refuse rather than leak.
    if (selected.response.length > 0 && ctx.route?.kind === 'forward' && !INSPECTED_OPERATIONS.has(ctx.route.operation)) {
      return gatewayError('content_policy_violation', `Response guardrails (${selected.response.map((g) => g.name).join(', ')}) cannot inspect ${ctx.route.operation} answers yet; use /v1/chat/completions, /v1/messages or /v1/responses, or set response: false on the guardrail.`);
    }
    const guard = new RequestGuard(key.name, ctx.requestId, selected.response, this.deps.logger);
    ctx.guard = guard;
    const answerHooks = selected.response.filter((g) => g.moderation?.responses === 'nonStreamed');
    if (answerHooks.length > 0) {
      if (ctx.stream) {
        const refused = this.streamedUnderAnswerHooks(guard, answerHooks);
        if (refused) return refused;
      } else guard.answerHooks = answerHooks;
    }
    if (selected.request.length === 0) return body;
    const json = body.json as Record<string, unknown>;
    const hooks = selected.request.filter((g) => g.moderation !== undefined);
    const texts: string[] | undefined = hooks.length > 0 ? [] : undefined;
    const verdict = checkRequest(json, selected.request, (f) => guard.record(f, 'request'), texts);
    if (verdict.kind === 'blocked') return verdict.error;
    if (texts) guard.moderation = { hooks, texts };
    if (!verdict.changed) return body;
    return { ...body, raw: Buffer.from(JSON.stringify(json)), rewritten: true };
  };

  /**
   * A stored Responses API response about to be read back (retrieve, cancel: their answers carry the
   * generated text, as the provider stored it, unmasked): the response guardrails of the key and
   * model inspect it as they do the create's answer (responseHeaders). Undefined = go on.
   */
  storedResponse(ctx: RequestContext): GatewayError | undefined {
    const key = ctx.key;
    if (!key || !ctx.model) return undefined;
    const selected = selectGuardrails(ctx.snapshot.guardrails, key, ctx.model, ctx.tenant?.guardrails);
    if ('missing' in selected) return gatewayError('internal_error', 'A content guardrail configured for this API key is missing on the gateway; the request was refused.');
    if (selected.response.length > 0) ctx.guard = new RequestGuard(key.name, ctx.requestId, selected.response, this.deps.logger);
    return undefined;
  }

  /**
   * A streamed answer cannot be held for a hook (it reaches the client as it is generated): a hook with
   * failureMode closed refuses the request, one with open lets the stream through unmoderated (both
   * counted and logged as rule moderation-unavailable, reason "streamed answer").
   */
  private streamedUnderAnswerHooks(guard: RequestGuard, hooks: readonly CompiledGuardrail[]): GatewayError | undefined {
    let refusal: GatewayError | undefined;
    for (const g of hooks) {
      const closed = g.moderation?.failureMode === 'closed';
      guard.decide(g.name, 'moderation-unavailable', closed ? 'block' : 'log', 'response', { reason: 'streamed answer' });
      refusal ??= closed
        ? gatewayError('content_policy_violation', `Guardrail ${g.name} has answers checked by an external moderation service, which cannot check a streamed answer; send the request with "stream": false.`)
        : undefined;
    }
    return refusal;
  }

  /**
   * A non-streamed answer that passed the local rules, before it goes out: the hooks of
   * moderation.responses: nonStreamed judge its text (after masking). undefined when there are none.
   */
  moderateAnswer(ctx: RequestContext): Promise<GatewayError | undefined> | undefined {
    const guard = ctx.guard;
    const inspector = guard?.inspector;
    if (!guard || guard.answerHooks.length === 0 || !(inspector instanceof JsonGuard)) return undefined;
    const hooks = guard.answerHooks;
    guard.answerHooks = [];
    return Promise.all(hooks.map((g) => moderate(g.moderation as CompiledModeration, inspector.texts))).then((results) => verdict(guard, hooks, results, 'response'));
  }

  /**
   * After planning, before limits: the external moderation hooks of this request's guardrails, all at
   * once. undefined when there are none (no promise, no extra turn); else the refusal or undefined.
   */
  moderate(ctx: RequestContext): Promise<GatewayError | undefined> | undefined {
    const guard = ctx.guard;
    const pending = guard?.moderation;
    if (!guard || !pending) return undefined;
    guard.moderation = undefined;
    return Promise.all(pending.hooks.map((g) => moderate(g.moderation as CompiledModeration, pending.texts))).then((results) => verdict(guard, pending.hooks, results, 'request'));
  }

  /** Response headers: whether (and how) the body must be inspected. Only successful answers are. */
  responseHeaders(ctx: RequestContext, status: number, endOfStream: boolean, contentType?: string): ResponseInspection {
    const guard = ctx.guard;
    if (!guard || guard.response.length === 0 || status !== 200 || endOfStream) return 'none';
    // Embeddings and token counts carry no generated text (and embeddings can be large): not inspected.
    if (ctx.route?.kind === 'forward' && (ctx.route.operation === 'embeddings' || ctx.route.operation === 'messages/count_tokens')) return 'none';
    const report = (f: Finding): void => guard.record(f, 'response');
    const operation = ctx.route?.kind === 'forward' ? ctx.route.operation : undefined;
    const api: ClientApi = operation === 'messages' ? 'anthropic' : 'openai';
    // Stored Responses (retrieve, cancel) answer in the Responses API's shape too; a retrieve may ask
    // for a stream (?stream=true), so what the provider sent decides, not the request.
    const stored = ctx.route?.kind === 'stored-response';
    const responses = operation === 'responses' || stored;
    const streamed = stored ? (contentType ?? '').toLowerCase().startsWith('text/event-stream') : ctx.stream === true;
    if (stored) ctx.stream = streamed; // the body answers below depend on it
    if (streamed) {
      const window = guard.response.reduce((m, g) => Math.max(m, g.window), 1);
      guard.inspector = new SseGuard(guard.response, window, report, responses ? 'responses' : api);
      return 'streamed';
    }
    guard.inspector = new JsonGuard(guard.response, report, api, guard.answerHooks.length > 0);
    return 'buffered';
  }

  /**
   * One response body chunk (after the limits step): the bytes for the client, or undefined to send
   * nothing yet (a non-streamed body is held until its end).
   */
  responseBody(ctx: RequestContext, chunk: Buffer, end: boolean): GuardOutput | undefined {
    const inspector = ctx.guard?.inspector;
    if (!inspector) return { kind: 'bytes', body: chunk };
    const out = inspector.push(chunk, end);
    if (out?.kind === 'blocked' && ctx.guard) ctx.guard.cut = true;
    return out;
  }
}

/**
 * The hooks' answers as one decision: a flagged text refuses (400 content_policy_violation); a failed
 * hook refuses with failureMode closed (503 moderation_unavailable) and is only logged with open.
 */
function verdict(guard: RequestGuard, hooks: readonly CompiledGuardrail[], results: readonly ModerationResult[], phase: 'request' | 'response'): GatewayError | undefined {
  let refusal: GatewayError | undefined;
  results.forEach((r, i) => {
    const g = hooks[i] as CompiledGuardrail;
    const mode = (g.moderation as CompiledModeration).failureMode;
    if (r.kind === 'flagged') {
      guard.decide(g.name, 'moderation', 'block', phase, { categories: r.categories });
      refusal ??= gatewayError(
        'content_policy_violation',
        phase === 'request'
          ? `Your request was blocked by the gateway's content policy (guardrail ${g.name}, rule moderation).`
          : `The response was stopped by the gateway's content policy (guardrail ${g.name}, rule moderation).`,
      );
    } else if (r.kind === 'failed') {
      guard.decide(g.name, 'moderation-unavailable', mode === 'closed' ? 'block' : 'log', phase, { reason: r.reason });
      if (mode === 'closed') {
        refusal ??= gatewayError(
          'moderation_unavailable',
          phase === 'request'
            ? `The content moderation service of guardrail ${g.name} did not answer (${r.reason}); the request was not forwarded.`
            : `The content moderation service of guardrail ${g.name} did not answer (${r.reason}); the answer was withheld.`,
        );
      }
    }
  });
  return refusal;
}
