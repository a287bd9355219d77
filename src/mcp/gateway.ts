/**
 * What an MCP endpoint serves for one request: an SDK Server (built per HTTP request; sessions are
 * sealed ids, not server memory) whose tools/list and tools/call cover a *view*: one MCPServer (its
 * own endpoint, tool names as published) or every server the key may use (the aggregated endpoint,
 * names prefixed `server__tool`). Policy is checked before anything reaches an upstream: the key's
 * server and tool allow-lists, the server's filters, the key's tool-call rate limit. Every tools/call
 * is accounted once (metrics, usage record, access log) whatever its outcome.
 */
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/ajv-provider.js';
import {
  CallToolRequestSchema,
  ErrorCode,
  GetPromptRequestSchema,
  ListPromptsRequestSchema,
  ListResourcesRequestSchema,
  ListToolsRequestSchema,
  McpError,
  ReadResourceRequestSchema,
  type CallToolResult,
  type GetPromptResult,
  type JSONRPCRequest,
  type LoggingLevel,
  type LoggingMessageNotification,
  type Progress,
  type ProgressToken,
  type Prompt,
  type ServerNotification,
  type ReadResourceResult,
  type Resource,
  type Tool,
} from '@modelcontextprotocol/sdk/types.js';
import { serverAllowed, TOOL_SEPARATOR, toolAllowed, toolPublished, type McpServerEntry } from '../config/mcp.js';
import type { KeyEntry, Snapshot } from '../config/snapshot.js';
import type { Logger } from '../observability/logger.js';
import { mcpToolCallDurationSeconds, mcpToolCallsTotal, rateLimitRejectionsTotal } from '../observability/metrics.js';
import { monthSpan } from '../ratelimit/calendar.js';
import { scopeLabel, toolCallChecks } from '../ratelimit/plan.js';
import { LimiterUnavailableError, type Limiter, type LimitCheck } from '../ratelimit/types.js';
import type { UsageAccountant } from '../usage/accountant.js';
import { belowLevel, isLogLevel, LOG_LEVELS } from './log-levels.js';
import { UpstreamError, type CallHooks, type UpstreamPool } from './upstreams.js';

/** What a client's tools/call brings besides name and arguments (from the SDK's request extra). */
export interface CallContext {
  /** Aborted when the client cancels the call (notifications/cancelled) or its connection closes. */
  readonly signal?: AbortSignal;
  /** The client's progressToken: progress from the upstream is forwarded under it. */
  readonly progressToken?: ProgressToken;
  /** Sends a notification to the client, on the call's own stream. */
  readonly notify?: (notification: ServerNotification) => Promise<void>;
}

/** JSON-RPC error codes of the gateway's own refusals (the -32000..-32099 server range). */
export const MCP_ERRORS = {
  /** The key may not use this tool (or it does not exist): never sent upstream. */
  toolNotAllowed: ErrorCode.InvalidParams,
  /** toolCallsPerMinute exhausted; data carries retryAfterSeconds. */
  rateLimited: -32029,
  /** The upstream MCP server is unreachable or broke the connection. */
  upstreamUnavailable: -32010,
  /** The upstream did not answer within the MCPServer's timeoutSeconds. */
  upstreamTimeout: -32011,
} as const;

export type CallOutcome =
  | 'ok'
  | 'tool_error'
  | 'denied'
  | 'unknown_tool'
  | 'rate_limited'
  | 'timeout'
  | 'unavailable'
  | 'upstream_error'
  | 'cancelled'
  | 'internal_error';

/** Who is asking, over which view, with which shared services. */
export interface RequestScope {
  readonly snapshot: Snapshot;
  readonly key: KeyEntry;
  /** The servers of this endpoint (already filtered to those the key may use). */
  readonly servers: readonly McpServerEntry[];
  /** True on the aggregated endpoint: tool names are `server__tool`. */
  readonly aggregated: boolean;
  readonly requestId: string;
  /** Names the client session for its log level (logging/setLevel): a hash, never the session id. */
  readonly logSession?: string;
}

export interface GatewayDeps {
  readonly upstreams: UpstreamPool;
  readonly limiter: Limiter;
  readonly accountant: UsageAccountant;
  readonly logger: Logger;
  readonly now?: () => number;
  /** Tells the other replicas a session's log level (undefined: with one replica). */
  readonly publishLogLevel?: (session: string, level: LoggingLevel | undefined, servers: readonly string[]) => void;
}

/** The servers of the key's namespace the key may use. */
export function allowedServers(snapshot: Snapshot, key: KeyEntry): McpServerEntry[] {
  if (!key.mcp) return [];
  const namespace = namespaceOf(key);
  return (snapshot.mcp.byNamespace.get(namespace) ?? []).filter((s) => serverAllowed(key.mcp, s.name));
}

/** Namespace of a key (`namespace/name`). */
export function namespaceOf(key: KeyEntry): string {
  const slash = key.name.indexOf('/');
  return slash < 0 ? 'default' : key.name.slice(0, slash);
}

/** Tool name as a view shows it. */
function publicName(scope: RequestScope, server: McpServerEntry, tool: string): string {
  return scope.aggregated ? server.name + TOOL_SEPARATOR + tool : tool;
}

/** The tools the key sees in this view. Aggregated: a server that fails is left out (others still list). */
export async function listTools(deps: GatewayDeps, scope: RequestScope): Promise<Tool[]> {
  const results = await Promise.allSettled(scope.servers.map((s) => deps.upstreams.tools(s)));
  const out: Tool[] = [];
  results.forEach((r, i) => {
    const server = scope.servers[i] as McpServerEntry;
    if (r.status === 'rejected') {
      if (!scope.aggregated) throw toJsonRpcError(r.reason);
      deps.logger.warn({ requestId: scope.requestId, server: server.id, err: String(r.reason) }, 'MCP server left out of tools/list');
      return;
    }
    for (const t of r.value) {
      if (toolAllowed(scope.key.mcp, server.name, t.name)) out.push({ ...t, name: publicName(scope, server, t.name) });
    }
  });
  return out;
}

/**
 * Whether the answer to a tools/call request may carry notifications (then it is sent as an SSE
 * stream; otherwise as plain JSON, which costs the gateway less): the client asked for progress, or
 * the tool's upstream may send log messages.
 */
export function callMayNotify(deps: GatewayDeps, scope: RequestScope, params: unknown): boolean {
  if (typeof params !== 'object' || params === null) return false;
  const p = params as { name?: unknown; _meta?: { progressToken?: unknown } };
  if (p._meta?.progressToken !== undefined) return true;
  const target = typeof p.name === 'string' ? resolve(scope, p.name) : undefined;
  return target !== undefined && deps.upstreams.mayLog(target.server, target.tool);
}

/** Resolves a tool name of this view to its server and upstream name. */
function resolve(scope: RequestScope, name: string): { server: McpServerEntry; tool: string } | undefined {
  if (!scope.aggregated) {
    const server = scope.servers[0];
    return server ? { server, tool: name } : undefined;
  }
  const sep = name.indexOf(TOOL_SEPARATOR);
  if (sep <= 0) return undefined;
  const serverName = name.slice(0, sep);
  const server = scope.servers.find((s) => s.name === serverName);
  return server ? { server, tool: name.slice(sep + TOOL_SEPARATOR.length) } : undefined;
}

function toJsonRpcError(err: unknown): McpError {
  if (err instanceof McpError) return err;
  if (err instanceof UpstreamError) {
    if (err.kind === 'timeout') return new McpError(MCP_ERRORS.upstreamTimeout, err.message);
    if (err.kind === 'unavailable') return new McpError(MCP_ERRORS.upstreamUnavailable, err.message);
    return new McpError(err.code ?? ErrorCode.InternalError, err.message);
  }
  return new McpError(ErrorCode.InternalError, 'The gateway failed to process this request.');
}

function outcomeOf(err: unknown): CallOutcome {
  if (err instanceof UpstreamError) return err.kind;
  return 'internal_error';
}

/**
 * The JSON-RPC error of a refused tool call: names the limit and whose it is (the key or a parent
 * account), with the retry hint in the message and in `data` (status 429, retryAfterSeconds).
 */
export function toolCallRefusal(check: LimitCheck, retryAfterMs: number): McpError {
  const retryAfterSeconds = Math.max(1, Math.ceil(retryAfterMs / 1000));
  rateLimitRejectionsTotal.inc({ limit: check.name, scope: check.scope });
  const resets = check.windowMs === 0 ? ` It resets at ${new Date(check.resetAtMs).toISOString()}.` : '';
  return new McpError(
    MCP_ERRORS.rateLimited,
    `Rate limit exceeded: ${check.name} of ${scopeLabel(check)} is ${check.limit}.${resets} Retry after ${retryAfterSeconds} s.`,
    { status: 429, retryAfterSeconds, limit: check.name, scope: check.scopeId },
  );
}

/** Runs one tools/call: policy, limit, upstream, accounting (exactly once). */
export async function callTool(deps: GatewayDeps, scope: RequestScope, name: string, args: Readonly<Record<string, unknown>>, call: CallContext = {}): Promise<CallToolResult> {
  const now = deps.now ?? Date.now;
  const started = performance.now();
  const target = resolve(scope, name);
  let outcome: CallOutcome = 'internal_error';
  let toolLabel = '-';
  let reachedUpstream = false;
  try {
    if (!target || !toolPublished(target.server.filter, target.tool)) {
      outcome = 'unknown_tool';
      throw new McpError(MCP_ERRORS.toolNotAllowed, `Unknown tool: ${name}`);
    }
    if (!toolAllowed(scope.key.mcp, target.server.name, target.tool)) {
      outcome = 'denied';
      throw new McpError(MCP_ERRORS.toolNotAllowed, `Tool ${name} is not allowed for API key ${scope.key.name}.`);
    }
    toolLabel = target.tool;
    // The key's and every ancestor's tool-call limits, checked and charged in one limiter call.
    const checks = toolCallChecks(scope.key, now());
    if (checks.length > 0) {
      let admitted;
      try {
        admitted = await deps.limiter.admit(checks, { requests: 1, tokens: 0 }, now());
      } catch (err) {
        if (err instanceof LimiterUnavailableError) throw new McpError(ErrorCode.InternalError, 'Tool-call limits cannot be checked right now; try again shortly.');
        throw err;
      }
      if (!admitted.allowed) {
        outcome = 'rate_limited';
        throw toolCallRefusal(checks[admitted.denied] as LimitCheck, admitted.retryAfterMs);
      }
    }
    reachedUpstream = true;
    const relay = new NotificationRelay(deps, scope, target.server, call);
    const result = await deps.upstreams.call(target.server, target.tool, args, relay.hooks());
    // Notifications still being written go out before the result (which ends the call's stream).
    await relay.flush();
    outcome = result.isError ? 'tool_error' : 'ok';
    return result;
  } catch (err) {
    if (reachedUpstream && call.signal?.aborted) {
      // The client cancelled: the upstream was told; the SDK sends the client no answer.
      outcome = 'cancelled';
      throw new McpError(ErrorCode.RequestTimeout, 'Request was cancelled by the client.');
    }
    if (!(err instanceof McpError) || reachedUpstream) {
      if (outcome === 'internal_error') outcome = err instanceof McpError ? 'upstream_error' : outcomeOf(err);
      if (!(err instanceof McpError || err instanceof UpstreamError)) {
        deps.logger.error({ requestId: scope.requestId, err }, 'unexpected error in MCP tools/call');
      }
    }
    throw toJsonRpcError(err);
  } finally {
    record(deps, scope, target?.server, toolLabel, name, outcome, performance.now() - started, reachedUpstream, now());
  }
}

/**
 * What the upstream call sends back besides its result: the client's progress (under the client's
 * own progressToken) and the upstream's log messages about the call (on the aggregated endpoint the
 * logger name gets the server's name in front, `server` or `server/logger`). Sends are kept until
 * flushed so none is overtaken by the result; notifications the client can no longer receive are
 * dropped.
 */
class NotificationRelay {
  private pending: Promise<void>[] = [];

  constructor(
    private readonly deps: GatewayDeps,
    private readonly scope: RequestScope,
    private readonly server: McpServerEntry,
    private readonly call: CallContext,
  ) {}

  hooks(): CallHooks {
    const signal = this.call.signal;
    if (!this.call.notify) return signal ? { signal } : {};
    const token = this.call.progressToken;
    return {
      ...(signal ? { signal } : {}),
      ...(token === undefined ? {} : { onprogress: (p: Progress) => this.send({ method: 'notifications/progress', params: { ...p, progressToken: token } }) }),
      onlog: (params: LoggingMessageNotification['params']) => {
        // The upstream was told the most verbose level of all sessions sharing it: this session's own level applies here.
        if (belowLevel(params.level, this.deps.upstreams.logLevel(this.scope.logSession))) return;
        const logger = this.scope.aggregated ? (params.logger ? `${this.server.name}/${params.logger}` : this.server.name) : params.logger;
        this.send({ method: 'notifications/message', params: logger === undefined ? params : { ...params, logger } });
      },
    };
  }

  private send(n: ServerNotification): void {
    const notify = this.call.notify;
    if (!notify) return;
    const sent = notify(n).catch((err: unknown) => {
      this.deps.logger.debug({ requestId: this.scope.requestId, err: String(err) }, 'MCP notification not delivered');
    });
    this.pending.push(sent);
    if (this.pending.length > 64) this.pending = [Promise.all(this.pending).then(() => undefined)];
  }

  async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    while (this.pending.length > 0) {
      const batch = this.pending;
      this.pending = [];
      await Promise.all(batch);
    }
    // The official SDK client handles a notification a microtask after a result read with it, and
    // then drops it: one turn of the event loop lets the last notification leave in its own write.
    await new Promise((resolve) => setImmediate(resolve));
  }
}

const STATUS_OF: Readonly<Record<CallOutcome, number>> = {
  ok: 200,
  tool_error: 200,
  denied: 403,
  unknown_tool: 404,
  rate_limited: 429,
  timeout: 504,
  unavailable: 502,
  upstream_error: 502,
  cancelled: 499,
  internal_error: 500,
};

function record(
  deps: GatewayDeps,
  scope: RequestScope,
  server: McpServerEntry | undefined,
  tool: string,
  requestedName: string,
  outcome: CallOutcome,
  durationMs: number,
  reachedUpstream: boolean,
  nowMs: number,
): void {
  const serverLabel = server?.id ?? '-';
  mcpToolCallsTotal.inc({ consumer: scope.key.name, server: serverLabel, tool, outcome });
  if (reachedUpstream && server) mcpToolCallDurationSeconds.observe({ server: server.id, tool }, durationMs / 1000);
  const zone = scope.key.limitScopes[0]?.monthTimeZone ?? 'UTC';
  deps.accountant.record({
    key: scope.key.name,
    lineage: scope.key.lineage,
    model: `mcp:${tool}`,
    upstreamModel: tool,
    provider: `mcp:${serverLabel}`,
    promptTokens: 0,
    completionTokens: 0,
    costPicos: 0n,
    latencyMs: Math.round(durationMs),
    status: STATUS_OF[outcome],
    month: monthSpan(nowMs, zone).id,
    atMs: nowMs,
    reported: true,
  });
  deps.logger.info(
    {
      requestId: scope.requestId,
      consumer: scope.key.name,
      server: serverLabel,
      tool: requestedName,
      endpoint: scope.aggregated ? 'aggregated' : 'server',
      outcome,
      durationMs: Math.round(durationMs * 10) / 10,
      configVersion: scope.snapshot.version,
    },
    'mcp tool call',
  );
}

/** Runs `list` on every server of the view; aggregated: a failing server is left out (logged). */
async function gather<T>(deps: GatewayDeps, scope: RequestScope, what: string, list: (s: McpServerEntry) => Promise<readonly T[]>): Promise<{ server: McpServerEntry; items: readonly T[] }[]> {
  const results = await Promise.allSettled(scope.servers.map(list));
  const out: { server: McpServerEntry; items: readonly T[] }[] = [];
  results.forEach((r, i) => {
    const server = scope.servers[i] as McpServerEntry;
    if (r.status === 'fulfilled') out.push({ server, items: r.value });
    else if (!scope.aggregated) throw toJsonRpcError(r.reason);
    else deps.logger.warn({ requestId: scope.requestId, server: server.id, err: String(r.reason) }, `MCP server left out of ${what}`);
  });
  return out;
}

/** Prompts of the view (aggregated: `server__prompt`). */
export async function listPrompts(deps: GatewayDeps, scope: RequestScope): Promise<Prompt[]> {
  const lists = await gather(deps, scope, 'prompts/list', (s) => deps.upstreams.prompts(s));
  return lists.flatMap(({ server, items }) => items.map((p) => ({ ...p, name: publicName(scope, server, p.name) })));
}

export async function getPrompt(deps: GatewayDeps, scope: RequestScope, name: string, args: Readonly<Record<string, string>> | undefined): Promise<GetPromptResult> {
  const target = resolve(scope, name);
  if (!target) throw new McpError(ErrorCode.InvalidParams, `Unknown prompt: ${name}`);
  try {
    return await deps.upstreams.getPrompt(target.server, target.tool, args);
  } catch (err) {
    throw toJsonRpcError(err);
  }
}

/** Resources of the view; URIs are the upstreams' own (aggregated: names are prefixed `server__`). */
export async function listResources(deps: GatewayDeps, scope: RequestScope): Promise<Resource[]> {
  const lists = await gather(deps, scope, 'resources/list', (s) => deps.upstreams.resources(s));
  return lists.flatMap(({ server, items }) => items.map((r) => ({ ...r, name: publicName(scope, server, r.name) })));
}

/** Reads a resource from the server of the view that lists its URI. */
export async function readResource(deps: GatewayDeps, scope: RequestScope, uri: string): Promise<ReadResourceResult> {
  let server = scope.aggregated ? undefined : scope.servers[0];
  if (scope.aggregated) {
    const lists = await gather(deps, scope, 'resources/list', (s) => deps.upstreams.resources(s));
    server = lists.find(({ items }) => items.some((r) => r.uri === uri))?.server;
  }
  if (!server) throw new McpError(ErrorCode.InvalidParams, `Unknown resource: ${uri}`);
  try {
    return await deps.upstreams.readResource(server, uri);
  } catch (err) {
    throw toJsonRpcError(err);
  }
}

/**
 * One JSON Schema validator for every per-request Server: the SDK would build a fresh Ajv instance
 * per Server (about half of the listener's CPU per request, measured with bench/mcp.ts).
 */
const SHARED_VALIDATOR = new AjvJsonSchemaValidator();

/** Holds the scope a session's handlers use; the HTTP+SSE transport refreshes it on every POST. */
export interface ScopeRef {
  scope: RequestScope;
}

/**
 * The SDK Server over a view. Streamable HTTP builds one per HTTP request (a fixed scope); the older
 * HTTP+SSE transport keeps one per stream and refreshes `ref.scope` (snapshot, key) on every POST.
 */
export function buildMcpServer(deps: GatewayDeps, ref: ScopeRef): Server {
  const first = ref.scope;
  const only = first.aggregated ? undefined : first.servers[0];
  // logging only when some server of the view may send log messages (an MCP upstream that declared
  // it, or whose capabilities are not known yet): httpTools never do.
  const logging = first.servers.some((s) => deps.upstreams.mayLogServer(s));
  const server = new Server(
    { name: only ? `tollgate/${only.id}` : 'tollgate', version: '0.1.0' },
    {
      capabilities: { tools: {}, prompts: {}, resources: {}, ...(logging ? { logging: {} } : {}) },
      instructions: only?.description || 'Tollgate MCP gateway: the tools of every MCP server your API key may use, named server__tool.',
      jsonSchemaValidator: SHARED_VALIDATOR,
    },
  );
  server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: await listTools(deps, ref.scope) }));
  server.setRequestHandler(CallToolRequestSchema, async (req, extra) => {
    const token = req.params._meta?.progressToken;
    return callTool(deps, ref.scope, req.params.name, req.params.arguments ?? {}, {
      signal: extra.signal,
      notify: extra.sendNotification,
      ...(token === undefined ? {} : { progressToken: token }),
    });
  });
  server.setRequestHandler(ListPromptsRequestSchema, async () => ({ prompts: await listPrompts(deps, ref.scope) }));
  server.setRequestHandler(GetPromptRequestSchema, async (req) => getPrompt(deps, ref.scope, req.params.name, req.params.arguments));
  server.setRequestHandler(ListResourcesRequestSchema, async () => ({ resources: await listResources(deps, ref.scope) }));
  server.setRequestHandler(ReadResourceRequestSchema, async (req) => readResource(deps, ref.scope, req.params.uri));
  if (logging) {
    // The SDK's own handler keeps the level in this per-request Server and answers an invalid level
    // with an internal error; the gateway's passes it upstream and answers -32602.
    server.removeRequestHandler('logging/setLevel');
    server.fallbackRequestHandler = async (request) => {
      if (request.method !== 'logging/setLevel') throw Object.assign(new Error('Method not found'), { code: ErrorCode.MethodNotFound });
      await setLogLevel(deps, ref.scope, request);
      return {};
    };
  }
  return server;
}

/**
 * logging/setLevel: the session's minimum level for log messages relayed to it, passed to every
 * upstream of its view that declares `logging` (see UpstreamPool.setLogLevel) and to the other
 * replicas. An unknown level is -32602.
 */
async function setLogLevel(deps: GatewayDeps, scope: RequestScope, request: JSONRPCRequest): Promise<void> {
  const level = request.params?.['level'];
  if (!isLogLevel(level)) {
    throw new McpError(ErrorCode.InvalidParams, `Invalid log level ${JSON.stringify(level) ?? 'undefined'}: use one of ${LOG_LEVELS.join(', ')}.`);
  }
  const session = scope.logSession;
  if (session === undefined) return;
  const servers = scope.servers.filter((s) => s.upstream !== undefined);
  await deps.upstreams.setLogLevel(session, level, servers, true);
  deps.publishLogLevel?.(session, level, servers.map((s) => s.id));
  deps.logger.info({ requestId: scope.requestId, consumer: scope.key.name, level, servers: servers.length }, 'mcp log level set');
}
