/**
 * The admin HTTP server. One table (adminRoutes) lists every endpoint it serves, who may call it
 * and what it does; docs/security.md lists the same and a test probes both against the running
 * process. Read-only endpoints are open (probes, Prometheus); actions need a bearer token with the
 * route's scope (src/admin/authorizer.ts). Anything not in the table is 404.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type pg from 'pg';
import type { AdminAuthorizer, AdminScope } from '../admin/authorizer.js';
import { parseReportQuery, runReport, toCsv } from '../ledger/reports.js';
import type { Logger } from './logger.js';
import { adminDeniedTotal, registry } from './metrics.js';

/** Whether the process takes traffic, and why not. */
export type Readiness = { readonly ready: true } | { readonly ready: false; readonly reason: 'starting' | 'draining' };

export interface AdminServerOptions {
  readonly host: string;
  readonly port: number;
  readonly readiness: () => Readiness;
  readonly authorizer: AdminAuthorizer;
  /** Starts (or joins) the graceful drain, after which the process exits; resolves when drained. */
  readonly drain: (reason: string) => Promise<unknown>;
  readonly logger: Logger;
  /** Time a client has to send a whole request (not to get the answer); default 10 s. */
  readonly requestTimeoutMs?: number;
  /** The usage ledger's reports (GET /admin/usage); undefined while or when there is no ledger. */
  readonly usageReports?: () => pg.Pool | undefined;
}

/** Who may call a route: anyone who reaches the port, or a bearer of a token with the scope. */
export type RouteAccess = { readonly kind: 'open' } | { readonly kind: 'token'; readonly scope: AdminScope };

export type AdminMethod = 'GET' | 'HEAD' | 'POST';

/** One admin endpoint. */
export interface AdminRoute {
  readonly path: string;
  readonly methods: readonly AdminMethod[];
  readonly access: RouteAccess;
  readonly handle: (req: IncomingMessage, res: ServerResponse) => void;
}

const READ: readonly AdminMethod[] = ['GET', 'HEAD'];
const OPEN: RouteAccess = { kind: 'open' };

const READINESS_TEXT = { starting: 'starting: config not loaded\n', draining: 'draining\n' } as const;

function text(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', ...headers });
  res.end(body);
}

/** Every endpoint of the admin server (the table docs/security.md documents). */
export function adminRoutes(options: Pick<AdminServerOptions, 'readiness' | 'drain'> & Pick<Partial<AdminServerOptions>, 'usageReports'>): readonly AdminRoute[] {
  return [
    {
      path: '/healthz',
      methods: READ,
      access: OPEN,
      handle: (_req, res) => text(res, 200, 'ok\n'),
    },
    {
      path: '/readyz',
      methods: READ,
      access: OPEN,
      handle: (_req, res) => {
        const r = options.readiness();
        if (r.ready) text(res, 200, 'ready\n');
        else text(res, 503, READINESS_TEXT[r.reason]);
      },
    },
    {
      path: '/metrics',
      methods: READ,
      access: OPEN,
      handle: (_req, res) => {
        registry.metrics().then(
          (body) => {
            res.writeHead(200, { 'content-type': registry.contentType, 'cache-control': 'no-store' });
            res.end(body);
          },
          (err: unknown) => text(res, 500, `metrics failed: ${err instanceof Error ? err.message : String(err)}\n`),
        );
      },
    },
    {
      // Envoy's preStop hook: starts the drain (or joins one SIGTERM started) and answers when
      // nothing is in flight; the process then exits so Kubernetes replaces it.
      path: '/drain',
      methods: ['POST'],
      access: { kind: 'token', scope: 'lifecycle' },
      handle: (_req, res) => {
        options.drain('POST /drain').then(
          (result) => {
            res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store', connection: 'close' });
            res.end(JSON.stringify(result));
          },
          () => text(res, 500, 'drain failed\n'),
        );
      },
    },
    {
      // Usage and cost reports from the PostgreSQL ledger (docs/billing.md): operators only.
      path: '/admin/usage',
      methods: ['GET'],
      access: { kind: 'token', scope: 'reports' },
      handle: (req, res) => usageReport(req, res, options.usageReports?.()),
    },
  ];
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
  res.end(JSON.stringify(body));
}

/** GET /admin/usage: JSON (`{object, data, next_cursor}`) or CSV (next page in `x-next-cursor`). */
function usageReport(req: IncomingMessage, res: ServerResponse, pool: pg.Pool | undefined): void {
  if (!pool) return json(res, 503, { error: { message: 'No usage ledger is configured (--ledger-url).', type: 'api_error', code: 'ledger_unavailable' } });
  const url = req.url ?? '/';
  const q = parseReportQuery(new URLSearchParams(url.includes('?') ? url.slice(url.indexOf('?') + 1) : ''), Date.now());
  if ('error' in q) return json(res, 400, { error: { message: q.error, type: 'invalid_request_error', code: 'invalid_report_query' } });
  runReport(pool, q).then(
    (page) => {
      const next = page.nextCursor;
      if (q.format === 'csv') {
        res.writeHead(200, {
          'content-type': 'text/csv; charset=utf-8',
          'content-disposition': 'attachment; filename="tollgate-usage.csv"',
          'cache-control': 'no-store',
          'x-tollgate-report-source': page.source,
          ...(next ? { 'x-next-cursor': next } : {}),
        });
        res.end(toCsv(page.rows, q));
        return;
      }
      json(res, 200, { object: 'list', from: new Date(q.fromMs).toISOString(), to: new Date(q.toMs).toISOString(), data: page.rows, has_more: next !== undefined, next_cursor: next ?? null }, { 'x-tollgate-report-source': page.source });
    },
    (err: unknown) => json(res, 503, { error: { message: `The ledger could not answer: ${err instanceof Error ? err.message : String(err)}`, type: 'api_error', code: 'ledger_unavailable' } }),
  );
}

/** Starts the admin server; resolves with the bound port. */
export async function startAdminServer(options: AdminServerOptions): Promise<{ server: Server; port: number }> {
  const routes = new Map(adminRoutes(options).map((r) => [r.path, r]));
  for (const r of routes.values()) {
    if (r.access.kind === 'token' && !options.authorizer.grants(r.access.scope)) {
      options.logger.info({ path: r.path, scope: r.access.scope }, 'admin action off: no credential grants its scope (see --pod-token-file)');
    }
  }
  const requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
  const server = createServer({ connectionsCheckingInterval: Math.min(1000, Math.ceil(requestTimeoutMs / 2)) }, (req, res) => {
    // The path only: the query string never selects a route (only /admin/usage reads it).
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const route = routes.get(q === -1 ? url : url.slice(0, q));
    if (!route) {
      text(res, 404, 'not found\n');
      return;
    }
    // An action answers 401/403 before anything else, so a caller without the token learns
    // nothing about it (not even which methods it takes).
    if (route.access.kind === 'token') {
      const decision = options.authorizer.authorize(req.headers.authorization, route.access.scope);
      if (!decision.allowed) {
        adminDeniedTotal.inc({ path: route.path, reason: decision.reason });
        options.logger.debug({ path: route.path, method: req.method, reason: decision.reason, remote: req.socket.remoteAddress }, 'admin action refused');
        text(res, decision.status, decision.status === 401 ? 'unauthorized\n' : 'forbidden\n', decision.status === 401 ? { 'www-authenticate': 'Bearer realm="tollgate-admin"' } : {});
        req.resume();
        return;
      }
      options.logger.info({ path: route.path, method: req.method, caller: decision.credential }, 'admin action');
    }
    if (!(route.methods as readonly string[]).includes(req.method ?? '')) {
      text(res, 405, 'method not allowed\n', { allow: route.methods.join(', ') });
      req.resume();
      return;
    }
    req.resume(); // no route reads a body
    route.handle(req, res);
  });
  // The port may be reachable from the cluster network: a request must arrive whole in time (these
  // limits cover receiving the request, not the answer, so POST /drain may still wait for the whole
  // grace period), and idle sockets close after 5 s.
  server.headersTimeout = requestTimeoutMs;
  server.requestTimeout = requestTimeoutMs;
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address();
  return { server, port: typeof address === 'object' && address ? address.port : options.port };
}

/** Stops accepting and waits (at most `ms`) for open admin requests, such as POST /drain, to finish. */
export function closeAdminServer(server: Server, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.closeAllConnections();
      resolve();
    }, ms);
    timer.unref();
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    server.closeIdleConnections();
  });
}
