/**
 * Start and stop for the fake upstreams (providers, STS, MCP): every fake listens the same way and
 * must close its keep-alive connections at stop, or a test's Envoy keeps them and the file hangs.
 */
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
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

/**
 * A fake that is one plain HTTP server on a free loopback port (the credential and token fakes):
 * subclasses give the request listener to `listen` from their `start`.
 */
export abstract class LoopbackFake {
  private server: HttpServer | undefined;
  /** The bound port (0 before start). */
  protected portNumber = 0;

  protected async listen(listener: (req: IncomingMessage, res: ServerResponse) => void): Promise<void> {
    const server = createServer(listener);
    this.portNumber = await listenFake(server);
    this.server = server;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    await closeFake(server);
  }
}
