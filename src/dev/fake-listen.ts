/**
 * Start and stop for the fake upstreams (providers, STS, MCP): every fake listens the same way and
 * must close its keep-alive connections at stop, or a test's Envoy keeps them and the file hangs.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Server } from 'node:net';

/** Listens on `host:port` (0 = a free port) and resolves with the bound port. */
export async function listenFake(server: Server, port = 0, host = '127.0.0.1'): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  return typeof address === 'object' && address ? address.port : port;
}

/** Closes the server and every open connection, idle or not. */
export async function closeFake(server: { closeAllConnections(): void; close(cb: () => void): unknown } | undefined): Promise<void> {
  if (!server) return;
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/**
 * A request listener for an async handler: a handler that throws (a client that hung up mid-body,
 * a write to a reset stream) answers 500 or drops the connection instead of leaving an unhandled
 * rejection, which the test runner would blame on whichever suite started the fake.
 */
export function guardedHandler(handle: (req: IncomingMessage, res: ServerResponse) => Promise<void>): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (res.destroyed) return;
      if (!res.headersSent) res.writeHead(500).end(`fake upstream failed: ${err instanceof Error ? err.message : String(err)}`);
      else res.destroy();
    });
  };
}
