/**
 * HTTP/2 flow-control windows of the ext_proc server's connections from Envoy.
 *
 * Node's HTTP/2 defaults are 64 KiB per connection and per stream, and grpc-js exposes neither. Envoy
 * multiplexes every request of a worker thread over one connection, so with 500 streams whose chunks
 * are all inspected the 64 KiB connection window is a shared queue: the bench saw up to 300 KiB waiting
 * in Envoy (`http2.pending_send_bytes`) and the first bytes of new streams queued behind it. A large
 * prompt's body also crossed in 64 KiB steps, one window update per step. The windows only allow Envoy
 * to send ahead; what Envoy sends is already bounded by its own buffer limit per request.
 */
import type { Server } from '@grpc/grpc-js';
import type { Http2Server, ServerHttp2Session } from 'node:http2';

export interface FlowControlWindows {
  /** Bytes Envoy may send on one connection before Node acknowledges them. */
  readonly connectionBytes: number;
  /** Bytes Envoy may send on one stream (one request) before Node acknowledges them. */
  readonly streamBytes: number;
}

export const EXTPROC_WINDOWS: FlowControlWindows = { connectionBytes: 32 * 1024 * 1024, streamBytes: 4 * 1024 * 1024 };

/**
 * Applies `windows` to every connection the bound `server` accepts from now on. grpc-js keeps its
 * HTTP/2 servers in a private map; when a grpc-js upgrade changes that, this throws at start-up (and
 * the unit test in flow-control.test.ts fails) instead of silently falling back to 64 KiB.
 */
export function widenFlowControlWindows(server: Server, windows: FlowControlWindows): void {
  const http2Servers = (server as unknown as { http2Servers?: unknown }).http2Servers;
  if (!(http2Servers instanceof Map) || http2Servers.size === 0) {
    throw new Error('grpc-js internals changed: no HTTP/2 servers to set flow-control windows on (bind first)');
  }
  for (const h2 of http2Servers.keys() as IterableIterator<Http2Server>) {
    h2.on('session', (session: ServerHttp2Session) => {
      session.settings({ initialWindowSize: windows.streamBytes });
      // The connection window is not a setting: it grows by a WINDOW_UPDATE that Node sends here.
      session.setLocalWindowSize(windows.connectionBytes);
    });
  }
}

/**
 * Stream resets Envoy may send on one connection (Node's HTTP/2 defaults: a burst of 1,000, then 33
 * per second, after which Node ends the connection with every request on it: its "rapid reset"
 * guard). Envoy resets an ext_proc stream whenever the server ends it before Envoy is done sending
 * (the ext_proc lets a passed-through Responses stream go once its id is read: hundreds per second
 * under load). The only client of this server is the Envoy beside it, so the guard is set far above
 * anything it sends.
 */
export const EXTPROC_STREAM_RESETS = { burst: 1_000_000, perSecond: 1_000_000 } as const;

/**
 * Sets the reset allowance of the HTTP/2 servers `server` creates when it binds (call before
 * `bindAsync`). grpc-js builds them from a private options object; when a grpc-js upgrade changes
 * that, this throws at start-up (and the unit test fails) instead of silently keeping Node's guard.
 */
export function allowEnvoyStreamResets(server: Server, resets: { readonly burst: number; readonly perSecond: number } = EXTPROC_STREAM_RESETS): void {
  const options = (server as unknown as { commonServerOptions?: unknown }).commonServerOptions;
  if (typeof options !== 'object' || options === null) throw new Error('grpc-js internals changed: no HTTP/2 server options to set the stream reset allowance on');
  Object.assign(options, { streamResetBurst: resets.burst, streamResetRate: resets.perSecond });
}
