/**
 * Per-request state shared by the pipeline steps. One snapshot per request: taken once when the
 * request headers arrive and used for every later step of that request.
 */
import type { KeyEntry, ModelRoute, Snapshot } from '../config/snapshot.js';
import type { GatewayErrorCode } from '../errors.js';
import type { RequestAccounting } from './limits.js';
import type { RequestBody } from './request-body.js';
import type { RequestGuard } from '../guardrails/step.js';
import type { Tenant } from '../tenancy/hosts.js';
import type { ApiRoute, StoredAction } from './route.js';
import type { ResponseIdCapture } from '../responses/id-capture.js';
import type { AttemptRecord } from '../routing/plan.js';

export interface RequestContext {
  readonly requestId: string;
  /** process.hrtime.bigint() when the request headers arrived. */
  readonly startedNs: bigint;
  readonly snapshot: Snapshot;
  key?: KeyEntry;
  route?: ApiRoute;
  /** Model as the client asked for it. */
  requestedModel?: string;
  /** Model after mapping (a served name). */
  model?: string;
  chosen?: ModelRoute;
  stream?: boolean;
  /** HTTP status the client got (upstream or local reply). */
  status?: number;
  errorCode?: GatewayErrorCode;
  responseHeadersNs?: bigint;
  /** process.hrtime.bigint() of a stream's first response body bytes (time to first token). */
  firstChunkNs?: bigint;
  /** Routing plan shared with the attempt stage (src/routing/plan.ts). */
  planId?: string;
  /** A direct request's attempt (one target, no attempt stage): the request stage reports it. */
  attempt?: AttemptRecord;
  /** process.hrtime.bigint() when a direct request was sent upstream. */
  sentNs?: bigint;
  /** Upstream attempts made (1 = no failover). */
  attempts?: number;
  /** Routing target that answered (provider, or provider@ip:port). */
  targetId?: string;
  /** The `anthropic-version` header of a Messages request (passed on to Anthropic providers). */
  anthropicVersion?: string;
  /** The `anthropic-beta` header of a Messages request (Bedrock takes its values in the body). */
  anthropicBeta?: string;
  /** The parsed request body, kept only until the limits step has used it. */
  body?: RequestBody;
  /** Limits and usage state of this request (see pipeline/limits.ts). */
  accounting?: RequestAccounting;
  /** What the request used and cost (set when its usage is recorded; for the access log). */
  billed?: { readonly promptTokens: number; readonly completionTokens: number; readonly costPicos: bigint };
  /** Guardrails of this request's response (src/guardrails/step.ts); absent when none apply. */
  guard?: RequestGuard;
  /** A request about a stored Responses API response (src/pipeline/stored-responses.ts). */
  stored?: { readonly action: StoredAction; readonly responseId: string };
  /** A Responses API create whose response will be stored: reads its id from the answer for the directory. */
  idCapture?: ResponseIdCapture;
  /** The tenant of the request's Host (GatewayConfig spec.tenants), if any. */
  tenant?: Tenant;
}

/** The namespace of a qualified `namespace/name` (ApiKey names; `default` without one). */
function namespaceOf(qualified: string): string {
  const slash = qualified.indexOf('/');
  return slash === -1 ? 'default' : qualified.slice(0, slash);
}

/**
 * The prompt template of a `POST /v1/templates/<name>` request and the version label it had in this
 * request's snapshot (templates live in the key's namespace); undefined for other requests.
 */
export function templateOf(ctx: RequestContext): { readonly name: string; readonly version: string | undefined } | undefined {
  const name = ctx.route?.kind === 'forward' ? ctx.route.template : undefined;
  if (name === undefined) return undefined;
  const version = ctx.key ? ctx.snapshot.templates.byName.get(`${namespaceOf(ctx.key.name)}/${name}`)?.version : undefined;
  return { name, version };
}
