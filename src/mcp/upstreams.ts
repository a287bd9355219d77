/**
 * Connections to upstream MCP servers, one SDK Client per MCPServer per replica, shared by every
 * client session (the upstream sees the gateway, with the MCPServer's own credential). Connections
 * open lazily, reopen after a failure or a config change (URL, transport, credential), and their tool
 * lists are cached (refreshed on the upstream's list-changed notification, or after TOOLS_TTL_MS).
 * Errors come out as UpstreamError with a kind the listener maps to one JSON-RPC error each.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import {
  ErrorCode,
  LoggingMessageNotificationSchema,
  McpError,
  ProgressNotificationSchema,
  PromptListChangedNotificationSchema,
  ResourceListChangedNotificationSchema,
  ToolListChangedNotificationSchema,
  type CallToolResult,
  type GetPromptResult,
  type LoggingLevel,
  type LoggingMessageNotification,
  type Progress,
  type Prompt,
  type ReadResourceResult,
  type Resource,
  type Tool,
} from '@modelcontextprotocol/sdk/types.js';
import { toolPublished, type HttpToolEntry, type McpConfig, type McpServerEntry } from '../config/mcp.js';
import type { Logger } from '../observability/logger.js';
import { mcpUpstreamUp } from '../observability/metrics.js';
import { CallDeadline } from './deadline.js';
import { callHttpTool } from './http-tools.js';
import { LogLevels } from './log-levels.js';
import { UpstreamError } from './upstream-error.js';

/** What changed on an upstream (its list-changed notifications). */
export type ListKind = 'tools' | 'prompts' | 'resources';
export type ListChangedListener = (serverId: string, kind: ListKind) => void;

/** What one client's tool call wants back from the upstream besides its result. */
export interface CallHooks {
  /** The client cancelled the call or hung up: the upstream gets notifications/cancelled. */
  readonly signal?: AbortSignal;
  /** The client asked for progress (it sent a progressToken): the upstream's progress, as it came. */
  readonly onprogress?: (progress: Progress) => void;
  /** The upstream's log messages (notifications/message) about this call. */
  readonly onlog?: (params: LoggingMessageNotification['params']) => void;
}

/**
 * The call whose upstream request is being answered. Upstream connections are shared by every
 * client, so a log message must be tied to the call it is about: the Streamable HTTP transport reads
 * a request's answer stream (its related notifications, then its result) in the async context of
 * the request it sent, which is the context of the client's call.
 */
const currentCall = new AsyncLocalStorage<CallHooks>();

/** How long a discovered tool list is trusted without a list-changed notification. */
export const TOOLS_TTL_MS = 60_000;
/**
 * After a failed discovery, listing that server fails at once for this long: a slow or dead upstream
 * must not make every aggregated tools/list wait for its timeout.
 */
export const DISCOVERY_BACKOFF_MS = 5_000;

export { UpstreamError, type UpstreamErrorKind } from './upstream-error.js';

/** Health of one server as last seen by this replica (catalogue, metrics, status). */
export interface UpstreamHealth {
  readonly state: 'up' | 'down' | 'unknown';
  readonly message?: string;
  /** Tools published (after filters) at the last successful discovery. */
  readonly tools?: number;
  readonly checkedAt?: string;
}

interface Connection {
  readonly fingerprint: string;
  /** The MCPServer as last used (for level changes that come without one). */
  server: McpServerEntry;
  client: Client | undefined;
  connecting: Promise<Client> | undefined;
  tools: { readonly list: readonly Tool[]; readonly atMs: number } | undefined;
  listing: Promise<readonly Tool[]> | undefined;
  /** Progress tokens the gateway sent upstream -> the call that wants that progress. */
  readonly progress: Map<string | number, CallHooks>;
  /** Tool calls waiting for their answer on this connection (HTTP+SSE upstreams: see onLog). */
  readonly inflight: Set<CallHooks>;
  /** After an initialize probe that could not connect: no probe before this time (epoch ms). */
  probeAfterMs: number;
  /** The last discovery failure and until when it is answered from memory. */
  failure: { readonly error: UpstreamError; readonly untilMs: number } | undefined;
  health: UpstreamHealth;
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as { cause?: unknown }).cause;
    const detail = cause instanceof Error ? `: ${(cause as { code?: string }).code ?? cause.message}` : '';
    return `${err.message}${detail}`;
  }
  return String(err);
}

/** Maps anything an SDK call threw to an UpstreamError. */
function classify(err: unknown, server: McpServerEntry, what: string): UpstreamError {
  if (err instanceof UpstreamError) return err;
  if (err instanceof McpError) {
    if (err.code === ErrorCode.RequestTimeout) {
      return new UpstreamError('timeout', `MCP server ${server.id} did not answer ${what} within ${server.timeoutMs} ms`);
    }
    if (err.code === ErrorCode.ConnectionClosed) return new UpstreamError('unavailable', `MCP server ${server.id} closed the connection during ${what}`);
    return new UpstreamError('upstream_error', `MCP server ${server.id}: ${err.message}`, err.code);
  }
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) {
    return new UpstreamError('timeout', `MCP server ${server.id} did not answer ${what} within ${server.timeoutMs} ms`);
  }
  return new UpstreamError('unavailable', `MCP server ${server.id} is unavailable (${what}): ${describe(err)}`);
}

/** The Tool an httpTools entry publishes. */
export function httpToolDefinition(t: HttpToolEntry): Tool {
  return { name: t.name, description: t.description, inputSchema: t.inputSchema as Tool['inputSchema'] };
}

export class UpstreamPool {
  private readonly connections = new Map<string, Connection>();
  private readonly listeners = new Set<ListChangedListener>();
  private progressSeq = 0;
  /** The log levels client sessions set (logging/setLevel). */
  private readonly logLevels = new LogLevels();
  /** Per upstream client: the level it was last told, and the queue of setLevel requests to it. */
  private readonly sentLevels = new WeakMap<Client, { level: LoggingLevel | undefined; queue: Promise<void> }>();

  constructor(
    private readonly logger: Logger,
    private readonly clientInfo = { name: 'tollgate-mcp-gateway', version: '0.1.0' },
  ) {}

  /** Subscribes to the upstreams' list-changed notifications; returns the unsubscribe function. */
  onListChanged(listener: ListChangedListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(serverId: string, kind: ListKind): void {
    for (const l of this.listeners) l(serverId, kind);
  }

  private connection(server: McpServerEntry): Connection {
    let c = this.connections.get(server.id);
    if (c && c.fingerprint !== server.connectionFingerprint) {
      this.drop(c);
      c = undefined;
    }
    if (!c) {
      c = {
        fingerprint: server.connectionFingerprint,
        server,
        client: undefined,
        connecting: undefined,
        tools: undefined,
        listing: undefined,
        inflight: new Set(),
        progress: new Map(),
        failure: undefined,
        probeAfterMs: 0,
        health: { state: 'unknown' },
      };
      this.connections.set(server.id, c);
    }
    c.server = server;
    return c;
  }

  /** Forgets the connection's client (closed in the background) and its tools; the next use reconnects. */
  private drop(c: Connection): void {
    const client = c.client;
    c.client = undefined;
    c.tools = undefined;
    if (client) void client.close().catch(() => undefined);
  }

  private setHealth(server: McpServerEntry, c: Connection, health: UpstreamHealth): void {
    c.health = health;
    mcpUpstreamUp.set({ server: server.id }, health.state === 'up' ? 1 : 0);
  }

  private async client(server: McpServerEntry, c: Connection): Promise<Client> {
    if (c.client) return c.client;
    if (c.connecting) return c.connecting;
    const upstream = server.upstream;
    if (!upstream) throw new UpstreamError('unavailable', `MCP server ${server.id} has no upstream`);
    const url = new URL(upstream.url);
    const requestInit: RequestInit = { headers: { ...server.headers } };
    const client = new Client(this.clientInfo, { capabilities: {} });
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      c.tools = undefined;
      this.emit(server.id, 'tools');
    });
    client.setNotificationHandler(PromptListChangedNotificationSchema, () => this.emit(server.id, 'prompts'));
    client.setNotificationHandler(ResourceListChangedNotificationSchema, () => this.emit(server.id, 'resources'));
    client.onclose = () => {
      if (c.client === client) {
        c.client = undefined;
        c.tools = undefined;
      }
    };
    const transport = upstream.transport === 'sse' ? new SSEClientTransport(url, { requestInit }) : new StreamableHTTPClientTransport(url, { requestInit });
    // Connected outside any call's context: the connection's own streams (the upstream's standalone
    // stream, the whole HTTP+SSE stream) must not be taken for the call that happened to open it.
    c.connecting = currentCall
      .exit(() => client.connect(transport, { timeout: server.timeoutMs }))
      .then(async () => {
        this.interceptCallNotifications(server, c, transport);
        // A new upstream session starts at the upstream's own level: the one client sessions asked
        // for goes first (logging/setLevel), before any call.
        await currentCall.exit(() => this.applyLevel(server, client));
        c.client = client;
        return client;
      })
      .catch((err: unknown) => {
        void client.close().catch(() => undefined);
        throw classify(err, server, 'initialize');
      })
      .finally(() => {
        c.connecting = undefined;
      });
    return c.connecting;
  }

  /**
   * Progress and log messages about a call are taken off the transport before the SDK Client sees
   * them: the Client handles notifications a microtask after they arrive but a result at once, so a
   * notification sent just before the result (in the same read) would reach it after the call ended
   * and be dropped. Here they are handled in arrival order, in the context of the call's stream.
   */
  private interceptCallNotifications(server: McpServerEntry, c: Connection, transport: Transport): void {
    const deliver = transport.onmessage;
    if (!deliver) return;
    transport.onmessage = (message, extra) => {
      if ('method' in message && !('id' in message)) {
        if (message.method === 'notifications/progress') {
          const parsed = ProgressNotificationSchema.safeParse(message);
          const hooks = parsed.success ? c.progress.get(parsed.data.params.progressToken) : undefined;
          if (parsed.success && hooks?.onprogress) {
            const { progressToken: _token, _meta, ...progress } = parsed.data.params;
            hooks.onprogress(progress);
            return;
          }
        } else if (message.method === 'notifications/message') {
          const parsed = LoggingMessageNotificationSchema.safeParse(message);
          if (parsed.success) this.onLog(server, c, parsed.data.params);
          return;
        }
      }
      deliver(message, extra);
    };
  }

  /**
   * A log message from the upstream goes to the call it belongs to. Streamable HTTP: the call whose
   * answer stream carried it (exact). HTTP+SSE carries everything on one stream: it goes to the call
   * in flight when exactly one is (a message about a call precedes that call's result on the stream,
   * so it cannot belong to a call already answered); otherwise, and for messages on a Streamable HTTP
   * upstream's standalone stream, no client can be named and it is only logged here at debug.
   */
  private onLog(server: McpServerEntry, c: Connection, params: LoggingMessageNotification['params']): void {
    let hooks = currentCall.getStore();
    if (!hooks && server.upstream?.transport === 'sse' && c.inflight.size === 1) hooks = c.inflight.values().next().value;
    if (hooks?.onlog) hooks.onlog(params);
    else this.logger.debug({ server: server.id, level: params.level }, 'MCP upstream log message not tied to a call');
  }

  /** The tools the server publishes (after its filters; httpTools included), from cache when fresh. */
  async tools(server: McpServerEntry, nowMs = Date.now()): Promise<readonly Tool[]> {
    const http = server.httpTools.map(httpToolDefinition);
    if (!server.upstream) {
      return http;
    }
    const c = this.connection(server);
    if (c.tools && nowMs - c.tools.atMs < TOOLS_TTL_MS) return c.tools.list;
    if (c.failure && nowMs < c.failure.untilMs) throw c.failure.error;
    c.listing ??= this.discover(server, c, http).finally(() => {
      c.listing = undefined;
    });
    return c.listing;
  }

  private async discover(server: McpServerEntry, c: Connection, http: readonly Tool[]): Promise<readonly Tool[]> {
    try {
      const upstreamTools = await this.withReconnect(server, c, 'tools/list', async (client) => {
        const all: Tool[] = [];
        let cursor: string | undefined;
        for (let page = 0; page < 100; page++) {
          const r = await client.listTools(cursor === undefined ? {} : { cursor }, { timeout: server.timeoutMs });
          all.push(...r.tools);
          cursor = r.nextCursor;
          if (!cursor) break;
        }
        return all;
      });
      const names = new Set(http.map((t) => t.name));
      const list = [...upstreamTools.filter((t) => toolPublished(server.filter, t.name) && !names.has(t.name)), ...http];
      c.tools = { list, atMs: Date.now() };
      c.failure = undefined;
      this.setHealth(server, c, { state: 'up', tools: list.length, checkedAt: new Date().toISOString() });
      return list;
    } catch (err) {
      const e = classify(err, server, 'tools/list');
      c.failure = { error: e, untilMs: Date.now() + DISCOVERY_BACKOFF_MS };
      this.setHealth(server, c, { state: 'down', message: e.message, checkedAt: new Date().toISOString() });
      this.logger.warn({ server: server.id, kind: e.kind, err: e.message }, 'MCP tool discovery failed');
      throw e;
    }
  }

  /**
   * Runs `fn` on the server's client. A connection that failed (closed, upstream session expired:
   * HTTP 404) is reopened once. Requests that may have reached the upstream are not retried.
   */
  private async withReconnect<T>(server: McpServerEntry, c: Connection, what: string, fn: (client: Client) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const client = await this.client(server, c);
      try {
        return await fn(client);
      } catch (err) {
        const sessionGone = err instanceof StreamableHTTPError && err.code === 404;
        const closed = err instanceof McpError && err.code === ErrorCode.ConnectionClosed;
        if (!(err instanceof McpError) || sessionGone || closed) this.drop(c);
        if ((sessionGone || closed) && attempt === 0) continue;
        throw classify(err, server, what);
      }
    }
  }

  /**
   * Calls a tool the server publishes (filters already checked by the caller). `hooks`: the client's
   * cancellation (sent upstream as notifications/cancelled), progress and log messages of the call.
   */
  async call(server: McpServerEntry, tool: string, args: Readonly<Record<string, unknown>>, hooks: CallHooks = {}): Promise<CallToolResult> {
    const http = server.httpTools.find((t) => t.name === tool);
    if (http) {
      try {
        return await callHttpTool(http, args, server.headers, server.timeoutMs, hooks.signal);
      } catch (err) {
        throw classify(err, server, `${tool} (HTTP)`);
      }
    }
    const c = this.connection(server);
    // timeoutSeconds is how long the upstream may stay silent, maxTotalTimeoutSeconds the cap
    // (deadline.ts). The upstream is always asked for progress, under the gateway's own token
    // (unique per replica; the client's is put back on the way out): progress is what keeps a long
    // call alive, and it reaches the client only when the client asked for it.
    const deadline = new CallDeadline(server.timeoutMs, server.maxTotalTimeoutMs, { server: server.id, what: `tools/call ${tool}` });
    const signal = hooks.signal ? AbortSignal.any([hooks.signal, deadline.signal]) : deadline.signal;
    // The SDK's own clock only backs ours up.
    const options = { timeout: server.maxTotalTimeoutMs + 5_000, signal };
    const token = `tollgate-${++this.progressSeq}`;
    const forward = hooks.onprogress;
    const progressHooks: CallHooks = {
      ...hooks,
      onprogress: (p: Progress) => {
        deadline.touch();
        forward?.(p);
      },
    };
    const params = { name: tool, arguments: { ...args }, _meta: { progressToken: token } };
    c.progress.set(token, progressHooks);
    c.inflight.add(hooks);
    try {
      const result = await currentCall.run(hooks, () =>
        this.withReconnect(server, c, `tools/call ${tool}`, (client) => {
          deadline.start();
          return client.callTool(params, undefined, options);
        }),
      );
      return result as CallToolResult;
    } catch (err) {
      // A clock ran out: its own message (silence or cap), not the SDK's abort.
      if (deadline.signal.aborted && !hooks.signal?.aborted) throw deadline.signal.reason as UpstreamError;
      throw err;
    } finally {
      deadline.dispose();
      c.inflight.delete(hooks);
      c.progress.delete(token);
    }
  }

  /**
   * A client session's logging/setLevel (`level` undefined: the session ended). The session's own
   * level filters what is relayed to it (`logLevel`); every upstream among `servers` that declares
   * the `logging` capability is told the most verbose level any live session covering it asked
   * for, now (`connect`: opening the connection if needed) and whenever its connection is opened
   * again. Servers the session covered before are told their new level too. Never throws: an
   * upstream that cannot be reached gets the level when its connection opens.
   */
  async setLogLevel(session: string, level: LoggingLevel | undefined, servers: readonly McpServerEntry[], connect: boolean): Promise<void> {
    const withUpstream = servers.filter((s) => s.upstream !== undefined);
    const touched = this.logLevels.set(session, level, withUpstream.map((s) => s.id), Date.now());
    const inView = new Map(withUpstream.map((s) => [s.id, s]));
    await Promise.all(
      [...touched].map(async (id) => {
        const server = inView.get(id);
        let client = this.connections.get(id)?.client;
        if (!client && server && connect) {
          const opening = this.connection(server);
          client = await currentCall.exit(() => this.client(server, opening)).catch(() => undefined);
        }
        // (No-op for a connection that was told the level as it opened.)
        const c = this.connections.get(id);
        if (client && c) await this.applyLevel(server ?? c.server, client);
      }),
    );
  }

  /** The level a client session asked for (undefined: none; everything the upstream sends is relayed). */
  logLevel(session: string | undefined): LoggingLevel | undefined {
    return this.logLevels.get(session);
  }

  /** Tells an upstream the level its client sessions want, when it changed; in order, never throws. */
  private applyLevel(server: McpServerEntry, client: Client): Promise<void> {
    let sent = this.sentLevels.get(client);
    if (!sent) {
      sent = { level: undefined, queue: Promise.resolve() };
      this.sentLevels.set(client, sent);
    }
    const state = sent;
    state.queue = state.queue.then(async () => {
      // MCP has no way to unset a level: when no session wants one any more, the last one stays.
      const desired = this.logLevels.upstreamLevel(server.id);
      if (desired === undefined || desired === state.level || !client.getServerCapabilities()?.logging) return;
      try {
        await client.setLoggingLevel(desired, { timeout: server.timeoutMs });
        state.level = desired;
        this.logger.debug({ server: server.id, level: desired }, 'MCP upstream log level set');
      } catch (err) {
        this.logger.warn({ server: server.id, level: desired, err: describe(err) }, 'MCP upstream refused logging/setLevel');
      }
    });
    return state.queue;
  }

  /**
   * Connects to the servers whose capabilities this replica does not know yet, waiting at most
   * `waitMs` (a client's initialize: whether to declare `logging` depends on them). Never throws.
   */
  async probe(servers: readonly McpServerEntry[], waitMs: number): Promise<void> {
    const now = Date.now();
    const pending: Promise<unknown>[] = [];
    for (const s of servers) {
      if (!s.upstream) continue;
      const c = this.connection(s);
      if (c.client || (c.failure && now < c.failure.untilMs) || now < c.probeAfterMs) continue;
      // A hung or dead upstream costs the next initializes nothing for a while.
      c.probeAfterMs = now + DISCOVERY_BACKOFF_MS;
      pending.push(
        currentCall
          .exit(() => this.client(s, c))
          .then(() => {
            c.probeAfterMs = 0;
          })
          .catch(() => undefined),
      );
    }
    if (pending.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(pending), new Promise((resolve) => (timer = setTimeout(resolve, waitMs)))]);
    clearTimeout(timer);
  }

  /**
   * Whether the server may send log messages at all: an MCP upstream that declared the `logging`
   * capability, or whose capabilities this replica does not know yet.
   */
  mayLogServer(server: McpServerEntry): boolean {
    if (!server.upstream) return false;
    const caps = this.connections.get(server.id)?.client?.getServerCapabilities();
    return caps === undefined || caps.logging !== undefined;
  }

  /** The upstream's prompts (none when it has no upstream or does not offer prompts). */
  async prompts(server: McpServerEntry): Promise<readonly Prompt[]> {
    if (!server.upstream) return [];
    const c = this.connection(server);
    return this.withReconnect(server, c, 'prompts/list', async (client) => {
      if (!client.getServerCapabilities()?.prompts) return [];
      return (await client.listPrompts({}, { timeout: server.timeoutMs })).prompts;
    });
  }

  async getPrompt(server: McpServerEntry, name: string, args: Readonly<Record<string, string>> | undefined): Promise<GetPromptResult> {
    if (!server.upstream) throw new McpError(ErrorCode.InvalidParams, `Unknown prompt: ${name}`);
    const c = this.connection(server);
    return this.withReconnect(server, c, `prompts/get ${name}`, (client) =>
      client.getPrompt(args === undefined ? { name } : { name, arguments: { ...args } }, { timeout: server.timeoutMs }),
    );
  }

  /** The upstream's resources (none when it has no upstream or does not offer resources). */
  async resources(server: McpServerEntry): Promise<readonly Resource[]> {
    if (!server.upstream) return [];
    const c = this.connection(server);
    return this.withReconnect(server, c, 'resources/list', async (client) => {
      if (!client.getServerCapabilities()?.resources) return [];
      return (await client.listResources({}, { timeout: server.timeoutMs })).resources;
    });
  }

  async readResource(server: McpServerEntry, uri: string): Promise<ReadResourceResult> {
    if (!server.upstream) throw new McpError(ErrorCode.InvalidParams, `Unknown resource: ${uri}`);
    const c = this.connection(server);
    return this.withReconnect(server, c, 'resources/read', (client) => client.readResource({ uri }, { timeout: server.timeoutMs }));
  }

  /**
   * Whether a call of `tool` may bring log messages: an MCP upstream that declared the `logging`
   * capability (or whose capabilities are not known yet on this replica). httpTools never do.
   */
  mayLog(server: McpServerEntry, tool: string): boolean {
    return !server.httpTools.some((t) => t.name === tool) && this.mayLogServer(server);
  }

  /** Last known health of a server (unknown before its first discovery on this replica). */
  health(server: McpServerEntry): UpstreamHealth {
    if (!server.upstream) return { state: 'up', tools: server.httpTools.length };
    return this.connections.get(server.id)?.health ?? { state: 'unknown' };
  }

  /** Closes connections of servers that left the config (called on every snapshot swap). */
  prune(config: McpConfig): void {
    for (const [id, c] of this.connections) {
      const s = config.servers.get(id);
      if (!s || s.connectionFingerprint !== c.fingerprint) {
        this.connections.delete(id);
        if (c.client) void c.client.close().catch(() => undefined);
        mcpUpstreamUp.remove({ server: id });
      }
    }
  }

  async close(): Promise<void> {
    const clients = [...this.connections.values()].map((c) => c.client).filter((x): x is Client => x !== undefined);
    this.connections.clear();
    await Promise.allSettled(clients.map((c) => c.close()));
  }
}
