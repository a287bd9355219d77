/**
 * The admin HTTP server: /metrics (Prometheus), /healthz (alive), /readyz (config loaded), and
 * /drain (Envoy's preStop hook: starts a graceful drain and answers when it is done).
 */
import { createServer, type Server } from 'node:http';
import { registry } from './metrics.js';

export interface AdminServerOptions {
  readonly host: string;
  readonly port: number;
  readonly ready: () => boolean;
  /** Starts (or joins) the graceful drain; resolves when drained or the grace period ended. */
  readonly drain?: () => Promise<unknown>;
}

/** Starts the admin server; resolves with the bound port. */
export async function startAdminServer(options: AdminServerOptions): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/metrics') {
      registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': registry.contentType });
          res.end(text);
        },
        (err: unknown) => {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(String(err));
        },
      );
      return;
    }
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok\n');
      return;
    }
    if (path === '/drain' && options.drain) {
      options.drain().then(
        (result) => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify(result));
        },
        () => {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end('drain failed\n');
        },
      );
      return;
    }
    if (path === '/readyz') {
      const ready = options.ready();
      res.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' });
      res.end(ready ? 'ready\n' : 'config not loaded\n');
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address();
  return { server, port: typeof address === 'object' && address ? address.port : options.port };
}
