/**
 * The MCP listener: an HTTP server in the Tollgate process that Envoy routes `/mcp` to.
 *
 *   POST|GET|DELETE /mcp                      aggregated endpoint (every server the key may use)
 *   POST|GET|DELETE /mcp/<namespace>/<name>   one MCPServer
 *   GET /mcp/catalog                          the servers and tools the calling key may use
 *
 * Each request: one snapshot, key auth (the same step and key index as model traffic), endpoint
 * policy, then the official SDK's Streamable HTTP server transport answers the JSON-RPC. Sessions are
 * sealed ids (session.ts): any replica serves any request. Refusals before the SDK sees the request
 * (auth, size, JSON, session) are JSON-RPC error objects with the right HTTP status.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { rm } from 'node:fs/promises';
import { SSEServerTransport } from '@modelcontextprotocol/sdk/server/sse.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { ErrorCode, isInitializeRequest, isJSONRPCNotification, isJSONRPCRequest, type JSONRPCRequest } from '@modelcontextprotocol/sdk/types.js';
import type { Snapshot, KeyEntry } from '../config/snapshot.js';
import type { ConfigStore } from '../config/store.js';
import { statusOf } from '../errors.js';
import { mcpHttpRequestsTotal, mcpSseRelaysTotal, mcpSseRelaySeconds } from '../observability/metrics.js';
import { authenticate, extractKey } from '../pipeline/auth.js';
import { checkClientAddress, CLIENT_ADDRESS_HEADER } from '../pipeline/client-address.js';
import { buildCatalog } from './catalog.js';
import { allowedServers, buildMcpServer, callMayNotify, namespaceOf, type GatewayDeps, type RequestScope, type ScopeRef } from './gateway.js';
import type { CancelRelay } from './cancel-relay.js';
import type { RelayAnswer, RelayedMessage, SseRelay } from './sse-relay.js';
import { SessionSealer } from './session.js';
import { hostOf } from '../tenancy/hosts.js';

export interface McpListenerOptions extends GatewayDeps {
  readonly store: ConfigStore;
  readonly maxBodyBytes: number;
  readonly sessions: SessionSealer;
  /** Relays cancellations to the replica running the call (Redis); undefined with one replica. */
  readonly cancels?: CancelRelay;
  /** Relays HTTP+SSE POSTs to the replica holding the session's stream (Redis); undefined with one replica. */
  readonly sseRelay?: SseRelay;
}

type EndpointKind = 'aggregated' | 'server' | 'catalog' | 'legacy-sse' | 'other';

/** Open notification streams at most (GET); more get 503. */
export const MAX_NOTIFICATION_STREAMS = 10_000;
/** SSE comment sent on idle notification streams so proxies keep them open. */
const KEEPALIVE_MS = 25_000;

/** One client's notification stream (GET on an MCP endpoint) and the servers its view covers. */
interface NotificationStream {
  readonly res: ServerResponse;
  readonly servers: ReadonlySet<string>;
}

/** The older HTTP+SSE transport: GET <base>/sse opens the stream, POST <base>/messages?sessionId= sends. */
const LEGACY_PATH = /^\/mcp(?:\/([a-z0-9][-a-z0-9]*)\/([a-z0-9][-a-z0-9.]*))?\/(sse|messages)$/;

/** One HTTP+SSE session: its stream lives on this replica. */
interface LegacySession {
  readonly transport: SSEServerTransport;
  readonly ref: ScopeRef;
  /** The MCP endpoint (`/mcp` or `/mcp/<ns>/<name>`) it was opened on. */
  readonly endpoint: string;
}

const LEGACY_NOT_FOUND: RelayAnswer = {
  status: 404,
  code: ErrorCode.InvalidRequest,
  message: 'Session not found: open a new stream (GET .../sse).',
};

const SERVER_PATH = /^\/mcp\/([a-z0-9][-a-z0-9]*)\/([a-z0-9][-a-z0-9.]*)\/?$/;

/**
 * Identifies one client request: a request id is unique only within its session (sealed ids are
 * unique per session; sessionless clients of one key on one endpoint share a space).
 */
function inflightKey(sessionId: string | undefined, key: string, endpoint: string, requestId: unknown): string {
  // Hashed: this id may travel to other replicas (cancel-relay.ts) and must not reveal the session.
  return createHash('sha256').update(`${sessionId ?? '-'}\n${key}\n${endpoint}\n${typeof requestId}:${String(requestId)}`).digest('hex');
}

/**
 * Names a client session for its log level (logging/setLevel): hashed, as it travels to other
 * replicas. Sessionless clients of one key on one endpoint share one.
 */
function logSessionKey(sessionId: string | undefined, key: string, endpoint: string): string {
  return createHash('sha256').update(`log\n${sessionId ?? '-'}\n${key}\n${endpoint}`).digest('hex');
}

/** How long a client's initialize waits for upstreams this replica never reached (to declare `logging` or not). */
const INITIALIZE_PROBE_MS = 2000;

/** A JSON-RPC error response written by the gateway itself. */
function sendError(res: ServerResponse, status: number, code: number, message: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const body = JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: null });
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

/** Reads the body up to `limit` bytes; 'too_large' beyond it (the rest is not read). */
async function readBody(req: IncomingMessage, limit: number): Promise<Buffer | 'too_large'> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return 'too_large';
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) return 'too_large';
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

export class McpListener {
  private server: HttpServer | undefined;
  private socketPath: string | undefined;
  private readonly streams = new Set<NotificationStream>();
  private readonly legacy = new Map<string, LegacySession>();
  /** Streamable HTTP tool calls in flight, by inflightKey: where a cancellation must go. */
  private readonly inflight = new Map<string, StreamableHTTPServerTransport>();
  private keepalive: NodeJS.Timeout | undefined;
  /** What the SDK Servers run with: the options plus the relay of log levels to other replicas. */
  private readonly deps: GatewayDeps;

  constructor(private readonly options: McpListenerOptions) {
    const relay = options.cancels;
    this.deps = relay ? { ...options, publishLogLevel: (session, level, servers) => relay.publishLevel({ session, level, servers }) } : options;
  }

  /** Listens on `unix:/path` or `host:port`; resolves the bound TCP port (0 for a socket). */
  async start(address: string): Promise<number> {
    const server = createServer((req, res) => {
      void this.handle(req, res).catch((err: unknown) => {
        this.options.logger.error({ err, url: req.url }, 'unexpected error in the MCP listener');
        sendError(res, 500, ErrorCode.InternalError, 'The gateway failed to process this request.');
      });
    });
    // Long tool calls and SSE streams: Envoy owns the timeouts.
    server.requestTimeout = 0;
    server.headersTimeout = 60_000;
    this.server = server;
    let mcpConfig = this.options.store.current()?.mcp;
    const unsubscribe = this.options.store.onSwap((s) => {
      this.options.upstreams.prune(s.mcp);
      // MCPServers added, removed or changed: every view may have changed.
      if (s.mcp !== mcpConfig) {
        mcpConfig = s.mcp;
        for (const stream of this.streams) this.notify(stream, 'tools');
      }
    });
    const unlisten = this.options.upstreams.onListChanged((serverId, kind) => {
      for (const stream of this.streams) if (stream.servers.has(serverId)) this.notify(stream, kind);
    });
    this.options.cancels?.subscribe((key) => void this.cancelLocal(key));
    // Another replica's logging/setLevel: kept for that session's calls here, told to this replica's
    // upstream connections (none is opened for it).
    this.options.cancels?.subscribeLevels((change) => {
      const config = this.options.store.current()?.mcp;
      const servers = change.servers.map((id) => config?.servers.get(id)).filter((x): x is NonNullable<typeof x> => x !== undefined);
      void this.options.upstreams.setLogLevel(change.session, change.level, servers, false);
    });
    this.keepalive = setInterval(() => {
      for (const stream of this.streams) stream.res.write(': keepalive\n\n');
    }, KEEPALIVE_MS);
    this.keepalive.unref();
    server.once('close', () => {
      unsubscribe();
      unlisten();
    });
    if (address.startsWith('unix:')) {
      this.socketPath = address.slice('unix:'.length);
      await rm(this.socketPath, { force: true });
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(this.socketPath, () => resolve());
      });
      return 0;
    }
    const colon = address.lastIndexOf(':');
    const host = address.slice(0, colon);
    const port = Number(address.slice(colon + 1));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    const bound = server.address();
    return typeof bound === 'object' && bound ? bound.port : port;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    await this.options.cancels?.close();
    await this.options.sseRelay?.close();
    if (this.keepalive) clearInterval(this.keepalive);
    for (const stream of this.streams) stream.res.end();
    this.streams.clear();
    for (const session of this.legacy.values()) void session.transport.close().catch(() => undefined);
    this.legacy.clear();
    server.closeIdleConnections();
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      setTimeout(() => {
        server.closeAllConnections();
        resolve();
      }, 2000).unref();
    });
    await this.options.upstreams.close();
    if (this.socketPath) await rm(this.socketPath, { force: true });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const kind: EndpointKind =
      path === '/mcp' || path === '/mcp/'
        ? 'aggregated'
        : path === '/mcp/catalog'
          ? 'catalog'
          : SERVER_PATH.test(path)
            ? 'server'
            : LEGACY_PATH.test(path)
              ? 'legacy-sse'
              : 'other';
    res.once('finish', () => mcpHttpRequestsTotal.inc({ endpoint: kind, status: String(res.statusCode) }));
    const snapshot = this.options.store.current();
    if (!snapshot) return sendError(res, 503, ErrorCode.InternalError, 'The gateway has no configuration yet.');
    if (kind === 'other') return sendError(res, 404, ErrorCode.InvalidRequest, `No MCP endpoint at ${path}. Use /mcp, /mcp/<namespace>/<name> or /mcp/catalog.`);

    const key = authenticate(extractKey(header(req, 'authorization'), header(req, 'x-api-key')), snapshot, Date.now());
    if ('kind' in key) {
      const status = statusOf(key.code);
      return sendError(res, status, ErrorCode.InvalidRequest, key.message, status === 401 ? { 'www-authenticate': 'Bearer realm="tollgate"' } : {});
    }
    // Tenant hosts and IP allow-lists (docs/safety.md) hold here too: Envoy sets the client address header.
    if (key.hosts && !key.hosts.matches(hostOf(header(req, 'host')))) {
      return sendError(res, 401, ErrorCode.InvalidRequest, 'Incorrect API key provided.', { 'www-authenticate': 'Bearer realm="tollgate"' });
    }
    const denied = checkClientAddress(key, header(req, CLIENT_ADDRESS_HEADER));
    if (denied) return sendError(res, statusOf(denied.code), ErrorCode.InvalidRequest, denied.message);
    if (!key.mcp) return sendError(res, 403, ErrorCode.InvalidRequest, `API key ${key.name} has no MCP access (spec.mcp is not set).`);
    const requestId = header(req, 'x-request-id') ?? randomUUID();

    if (kind === 'catalog') {
      if (req.method !== 'GET') return sendError(res, 405, ErrorCode.InvalidRequest, 'Use GET for /mcp/catalog.', { allow: 'GET' });
      const body = JSON.stringify(await buildCatalog(this.options.upstreams, snapshot, key));
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    if (kind === 'legacy-sse') return this.serveLegacy(req, res, path, snapshot, key, requestId);
    const scope = this.scopeFor(kind, path, snapshot, key, requestId);
    if (typeof scope === 'string') return sendError(res, 404, ErrorCode.InvalidRequest, scope);
    await this.serveMcp(req, res, scope, path);
  }

  /**
   * The older HTTP+SSE transport (clients from before Streamable HTTP). The stream and its session
   * live on this replica; a POST for it that reaches another replica is relayed here (`sseRelay`,
   * Redis). Every POST is authenticated again by the replica it reaches, must come from the key that
   * opened the stream, and runs on the config snapshot current at the owner when it gets it.
   */
  private async serveLegacy(req: IncomingMessage, res: ServerResponse, path: string, snapshot: Snapshot, key: KeyEntry, requestId: string): Promise<void> {
    const m = LEGACY_PATH.exec(path);
    const endpoint = m?.[1] ? `/mcp/${m[1]}/${m[2] ?? ''}` : '/mcp';
    const scope = this.scopeFor(m?.[1] ? 'server' : 'aggregated', endpoint, snapshot, key, requestId);
    if (typeof scope === 'string') return sendError(res, 404, ErrorCode.InvalidRequest, scope);
    if (m?.[3] === 'sse') {
      if (req.method !== 'GET') return sendError(res, 405, ErrorCode.InvalidRequest, 'Use GET to open the stream.', { allow: 'GET' });
      if (this.legacy.size + this.streams.size >= MAX_NOTIFICATION_STREAMS) {
        return sendError(res, 503, ErrorCode.InternalError, 'Too many open streams on this replica; retry later.', { 'retry-after': '5' });
      }
      const transport = new SSEServerTransport(`${endpoint}/messages`, res);
      const sessionId = transport.sessionId;
      const logSession = logSessionKey(`legacy:${sessionId}`, key.name, endpoint);
      const ref: ScopeRef = { scope: { ...scope, logSession } };
      const server = buildMcpServer(this.deps, ref);
      this.legacy.set(sessionId, { transport, ref, endpoint });
      let closed = false;
      let release: (() => void) | undefined;
      res.once('close', () => {
        closed = true;
        // Relays for this session stop with its stream: other replicas then get 404 for it.
        release?.();
        this.legacy.delete(sessionId);
        this.endLogSession(logSession);
        void server.close().catch(() => undefined);
      });
      // Other replicas can reach the session before the client learns its message URL.
      const relay = this.options.sseRelay;
      if (relay) {
        const stop = await relay.hold(sessionId, (message) => this.relayedLegacy(sessionId, message));
        if (closed) return stop();
        release = stop;
      }
      await server.connect(transport);
      return;
    }
    if (req.method !== 'POST') return sendError(res, 405, ErrorCode.InvalidRequest, 'Use POST to send messages.', { allow: 'POST' });
    const sessionId = new URL(req.url ?? '/', 'http://x').searchParams.get('sessionId') ?? '';
    const local = this.legacy.has(sessionId);
    const relay = this.options.sseRelay;
    if (!local && !relay) {
      return sendError(
        res,
        404,
        ErrorCode.InvalidRequest,
        'Session not found on this replica. Without Redis (--redis-url) an HTTP+SSE session is held only by the replica that opened its stream: send all of its requests to that replica, or use Streamable HTTP. Otherwise open a new stream (GET .../sse).',
      );
    }
    const contentType = (header(req, 'content-type') ?? '').split(';')[0]?.trim().toLowerCase();
    if (contentType !== 'application/json') return sendError(res, 415, ErrorCode.InvalidRequest, 'Unsupported Media Type: POST messages as application/json.');
    const raw = await readBody(req, this.options.maxBodyBytes);
    if (raw === 'too_large') {
      res.setHeader('connection', 'close');
      return sendError(res, 413, ErrorCode.InvalidRequest, `Request body too large (limit ${this.options.maxBodyBytes} bytes).`);
    }
    const text = raw.toString('utf8');
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return sendError(res, 400, ErrorCode.ParseError, 'Parse error: the request body is not valid JSON.');
    }
    const answer = local || !relay ? await this.deliverLegacy(sessionId, endpoint, requestId, body, snapshot, key) : await this.relay(relay, sessionId, { key: key.name, endpoint, requestId, body: text });
    if ('code' in answer) return sendError(res, answer.status, answer.code, answer.message, answer.status === 503 ? { 'retry-after': '1' } : {});
    res.writeHead(202, { 'content-type': 'text/plain' }).end('Accepted');
  }

  /** Sends a POST to the replica holding its session; counted and timed. */
  private async relay(relay: SseRelay, sessionId: string, message: RelayedMessage): Promise<RelayAnswer> {
    const stop = mcpSseRelaySeconds.startTimer();
    const answer = await relay.send(sessionId, message);
    stop();
    const outcome = !('code' in answer) ? 'accepted' : answer.status === 404 ? 'not_found' : answer.status === 503 ? 'unavailable' : 'refused';
    mcpSseRelaysTotal.inc({ outcome });
    return answer;
  }

  /** A POST for a session held here that reached another replica (which authenticated its key). */
  private async relayedLegacy(sessionId: string, message: RelayedMessage): Promise<RelayAnswer> {
    const snapshot = this.options.store.current();
    if (!snapshot) return { status: 503, code: ErrorCode.InternalError, message: 'The gateway has no configuration yet.' };
    // The owner's own config decides the key's allow-lists and limits, as for a local POST.
    const key = snapshot.keysByName.get(message.key);
    if (!key?.mcp) return LEGACY_NOT_FOUND;
    let body: unknown;
    try {
      body = JSON.parse(message.body);
    } catch {
      return { status: 400, code: ErrorCode.ParseError, message: 'Parse error: the request body is not valid JSON.' };
    }
    return this.deliverLegacy(sessionId, message.endpoint, message.requestId, body, snapshot, key);
  }

  /**
   * Hands one POSTed message to the session's SDK Server (its answer goes on the session's stream):
   * the same path for a local POST and a relayed one.
   */
  private async deliverLegacy(sessionId: string, endpoint: string, requestId: string, body: unknown, snapshot: Snapshot, key: KeyEntry): Promise<RelayAnswer> {
    const session = this.legacy.get(sessionId);
    if (!session || session.endpoint !== endpoint || session.ref.scope.key.name !== key.name) return LEGACY_NOT_FOUND;
    const scope = this.scopeFor(endpoint === '/mcp' ? 'aggregated' : 'server', endpoint, snapshot, key, requestId);
    if (typeof scope === 'string') return { status: 404, code: ErrorCode.InvalidRequest, message: scope };
    session.ref.scope = { ...scope, logSession: session.ref.scope.logSession ?? logSessionKey(`legacy:${sessionId}`, key.name, endpoint) };
    try {
      await session.transport.handleMessage(body);
    } catch {
      return { status: 400, code: ErrorCode.InvalidRequest, message: 'Invalid message: the body is not one JSON-RPC message.' };
    }
    return { status: 202 };
  }

  /**
   * A client's notifications/cancelled (Streamable HTTP) arrives in its own POST, while the call runs
   * in the Server of another one: closing that request's transport aborts the call's handler, which
   * sends notifications/cancelled upstream, and ends the call's stream with no answer (as MCP asks).
   * A replica that does not run the call relays the cancellation to the others (`cancels`, Redis).
   */
  private cancel(key: string): void {
    if (this.cancelLocal(key)) return;
    this.options.cancels?.publish(key);
  }

  /** A session ended: its log level no longer counts, here or on the other replicas. */
  private endLogSession(session: string): void {
    if (this.options.upstreams.logLevel(session) === undefined) return;
    void this.options.upstreams.setLogLevel(session, undefined, [], false);
    this.options.cancels?.publishLevel({ session, level: undefined, servers: [] });
  }

  /** Ends the call with this id if this replica runs it. */
  private cancelLocal(key: string): boolean {
    const transport = this.inflight.get(key);
    if (!transport) return false;
    this.inflight.delete(key);
    void transport.close().catch(() => undefined);
    return true;
  }

  private scopeFor(kind: 'aggregated' | 'server', path: string, snapshot: Snapshot, key: KeyEntry, requestId: string): RequestScope | string {
    const servers = allowedServers(snapshot, key);
    if (kind === 'aggregated') return { snapshot, key, servers, aggregated: true, requestId };
    const m = SERVER_PATH.exec(path);
    const id = `${m?.[1] ?? ''}/${m?.[2] ?? ''}`;
    // Not found and not allowed read the same: a key learns nothing about servers it may not use.
    const server = namespaceOf(key) === m?.[1] ? servers.find((s) => s.id === id) : undefined;
    if (!server) return `No MCP server ${id} for API key ${key.name}.`;
    return { snapshot, key, servers: [server], aggregated: false, requestId };
  }

  /** Sends one list-changed notification on a stream (JSON-RPC notification as an SSE message). */
  private notify(stream: NotificationStream, kind: 'tools' | 'prompts' | 'resources'): void {
    stream.res.write(`event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', method: `notifications/${kind}/list_changed` })}\n\n`);
  }

  /**
   * GET: the client's server-initiated stream. It carries the list-changed notifications of the
   * upstreams in the client's view (and config changes). Held by this replica only: a client whose
   * stream breaks reopens it (the SDK client does), on any replica.
   */
  private openStream(req: IncomingMessage, res: ServerResponse, scope: RequestScope): void {
    if (!(header(req, 'accept') ?? '').includes('text/event-stream')) {
      return sendError(res, 406, ErrorCode.InvalidRequest, 'Not Acceptable: a GET must accept text/event-stream.');
    }
    if (this.streams.size >= MAX_NOTIFICATION_STREAMS) {
      return sendError(res, 503, ErrorCode.InternalError, 'Too many notification streams on this replica; retry later.', { 'retry-after': '5' });
    }
    const stream: NotificationStream = { res, servers: new Set(scope.servers.map((s) => s.id)) };
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    res.write(': tollgate notification stream\n\n');
    this.streams.add(stream);
    res.once('close', () => this.streams.delete(stream));
  }

  private async serveMcp(req: IncomingMessage, res: ServerResponse, viewScope: RequestScope, endpoint: string): Promise<void> {
    const now = Date.now();
    const sessionId = header(req, 'mcp-session-id');
    const scope: RequestScope = { ...viewScope, logSession: logSessionKey(sessionId, viewScope.key.name, endpoint) };
    if (sessionId !== undefined) {
      const claims = this.options.sessions.open(sessionId, now);
      if (!claims || claims.key !== scope.key.name || claims.endpoint !== endpoint) {
        return sendError(res, 404, ErrorCode.InvalidRequest, 'Session not found: the session id is invalid, expired or belongs to another key or endpoint. Initialize a new session.');
      }
    }
    if (req.method === 'GET') return this.openStream(req, res, scope);
    if (req.method === 'DELETE') {
      // Sealed sessions hold no other server state than a log level the client set.
      if (sessionId !== undefined && scope.logSession !== undefined) this.endLogSession(scope.logSession);
      res.writeHead(200).end();
      return;
    }
    if (req.method !== 'POST') return sendError(res, 405, ErrorCode.InvalidRequest, `Method ${req.method ?? ''} is not allowed.`, { allow: 'GET, POST, DELETE' });

    const raw = await readBody(req, this.options.maxBodyBytes);
    if (raw === 'too_large') {
      res.setHeader('connection', 'close');
      return sendError(res, 413, ErrorCode.InvalidRequest, `Request body too large (limit ${this.options.maxBodyBytes} bytes).`);
    }
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      return sendError(res, 400, ErrorCode.ParseError, 'Parse error: the request body is not valid JSON.');
    }
    const messages: readonly unknown[] = Array.isArray(body) ? body : [body];
    const initializing = messages.some((m) => isInitializeRequest(m));
    // A tools/call that may bring progress or log messages answers as an SSE stream (they go before
    // its result); everything else answers as plain JSON.
    const calls = messages.filter((m) => isJSONRPCRequest(m) && m.method === 'tools/call') as JSONRPCRequest[];
    const enableJsonResponse = !calls.some((c) => callMayNotify(this.options, scope, c.params));
    const transport = new StreamableHTTPServerTransport(
      initializing
        ? { sessionIdGenerator: () => this.options.sessions.seal({ key: scope.key.name, endpoint, issuedAtMs: now }), enableJsonResponse }
        : { enableJsonResponse },
    );
    for (const m of messages) {
      if (isJSONRPCNotification(m) && m.method === 'notifications/cancelled') this.cancel(inflightKey(sessionId, scope.key.name, endpoint, m.params?.['requestId']));
    }
    const keys = calls.map((c) => inflightKey(sessionId, scope.key.name, endpoint, c.id));
    for (const k of keys) this.inflight.set(k, transport);
    // Whether to declare `logging` depends on the upstreams' capabilities: learn those not known yet.
    if (initializing) await this.options.upstreams.probe(scope.servers, INITIALIZE_PROBE_MS);
    const server = buildMcpServer(this.deps, { scope });
    res.once('close', () => {
      for (const k of keys) if (this.inflight.get(k) === transport) this.inflight.delete(k);
      void transport.close().catch(() => undefined);
      void server.close().catch(() => undefined);
    });
    await server.connect(transport);
    await transport.handleRequest(req, res, body);
  }
}
