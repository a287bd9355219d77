/**
 * Start and stop for the fake upstreams (providers, STS, MCP): every fake listens the same way and
 * must close its keep-alive connections at stop, or a test's Envoy keeps them and the file hangs.
 */
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
