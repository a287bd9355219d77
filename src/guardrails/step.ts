/**
 * The guardrail step of a request: picks the guardrails for the key and model (one snapshot per
 * request), checks the request body before it is planned, and inspects the response body (streamed
 * or not) on its way to the client. Every finding acted on is counted and logged with the rule, the
 * key and the request id, never with the matched text.
 */
import type { RequestContext } from '../pipeline/context.js';
import type { RequestBody } from '../pipeline/request-body.js';
import { gatewayError, type GatewayError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { guardrailDecisionsTotal } from '../observability/metrics.js';
import { selectGuardrails, type CompiledGuardrail } from './compile.js';
import { checkRequest } from './request.js';
import { JsonGuard, SseGuard, type GuardOutput } from './response.js';
import type { Finding } from './scan.js';

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

  /** Counts a finding and logs the first of each (guardrail, rule, action, phase) of this request. */
  record(f: Finding, phase: 'request' | 'response'): void {
    const labels = { consumer: this.consumer, guardrail: f.guardrail.name, rule: f.rule.detector.rule, action: f.rule.action, phase };
    guardrailDecisionsTotal.inc(labels);
    const id = `${labels.guardrail}\u0000${labels.rule}\u0000${labels.action}\u0000${phase}`;
    this.logged ??= new Set();
    if (this.logged.has(id)) return;
    this.logged.add(id);
    this.logger.info({ requestId: this.requestId, ...labels }, 'guardrail decision');
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
    const selected = selectGuardrails(ctx.snapshot.guardrails, key, ctx.model);
    if ('missing' in selected) {
      this.deps.logger.error({ requestId: ctx.requestId, consumer: key.name, guardrail: selected.missing }, 'key references a guardrail the GatewayConfig does not define; refusing');
      return gatewayError('internal_error', 'A content guardrail configured for this API key is missing on the gateway; the request was refused.');
    }
    if (selected.request.length === 0 && selected.response.length === 0) return body;
    const guard = new RequestGuard(key.name, ctx.requestId, selected.response, this.deps.logger);
    if (selected.response.length > 0) ctx.guard = guard;
    if (selected.request.length === 0) return body;
    const json = body.json as Record<string, unknown>;
    const verdict = checkRequest(json, selected.request, (f) => guard.record(f, 'request'));
    if (verdict.kind === 'blocked') return verdict.error;
    if (!verdict.changed) return body;
    return { ...body, raw: Buffer.from(JSON.stringify(json)), rewritten: true };
  };

  /** Response headers: whether (and how) the body must be inspected. Only successful answers are. */
  responseHeaders(ctx: RequestContext, status: number, endOfStream: boolean): ResponseInspection {
    const guard = ctx.guard;
    if (!guard || status !== 200 || endOfStream) return 'none';
    const report = (f: Finding): void => guard.record(f, 'response');
    if (ctx.stream) {
      const window = guard.response.reduce((m, g) => Math.max(m, g.window), 1);
      guard.inspector = new SseGuard(guard.response, window, report);
      return 'streamed';
    }
    guard.inspector = new JsonGuard(guard.response, report);
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
