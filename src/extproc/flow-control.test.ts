import assert from 'node:assert/strict';
import { connect, constants, type ClientHttp2Session } from 'node:http2';
import { describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { EXTPROC_STREAM_RESETS, EXTPROC_WINDOWS, allowEnvoyStreamResets, widenFlowControlWindows } from './flow-control.js';

function bind(server: grpc.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port)));
  });
}

/** The client side of a connection once the server's settings and first window update have arrived. */
async function connected(port: number): Promise<ClientHttp2Session> {
  const session = connect(`http://127.0.0.1:${port}`);
  await new Promise<void>((resolve, reject) => {
    session.once('remoteSettings', () => resolve());
    session.once('error', reject);
  });
  // A ping round trip: the server's WINDOW_UPDATE was sent before its ping answer.
  await new Promise<void>((resolve, reject) => session.ping((err) => (err ? reject(err) : resolve())));
  return session;
}

describe('ext_proc flow-control windows', () => {
  it('a connection from Envoy may send the configured bytes per stream and per connection', async () => {
    const server = new grpc.Server();
    const port = await bind(server);
    widenFlowControlWindows(server, EXTPROC_WINDOWS);
    const session = await connected(port);
    try {
      assert.equal(session.remoteSettings.initialWindowSize, EXTPROC_WINDOWS.streamBytes);
      assert.equal(session.state.remoteWindowSize, EXTPROC_WINDOWS.connectionBytes);
    } finally {
      session.destroy();
      server.forceShutdown();
    }
  });
  it("without it a connection gets Node's 64 KiB (what the widening is for)", async () => {
    const server = new grpc.Server();
    const port = await bind(server);
    const session = await connected(port);
    try {
      assert.equal(session.remoteSettings.initialWindowSize, 65_535);
      assert.equal(session.state.remoteWindowSize, 65_535);
    } finally {
      session.destroy();
      server.forceShutdown();
    }
  });
  it('refuses a server that is not bound yet instead of silently keeping 64 KiB', () => {
    assert.throws(() => widenFlowControlWindows(new grpc.Server(), EXTPROC_WINDOWS), /grpc-js internals changed/);
  });
});

/** A server whose one bidi method holds every stream open without answering (as the ext_proc does mid-request). */
function holdingServer(): grpc.Server {
  const server = new grpc.Server();
  const identity = (b: Buffer): Buffer => b;
  server.addService(
    { Hold: { path: '/t.T/Hold', requestStream: true, responseStream: true, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity } },
    { Hold: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => void call.on('error', () => undefined) },
  );
  return server;
}

/** Opens `n` streams on one connection and resets each from the client side; whether the server sent GOAWAY. */
async function resetStreams(port: number, n: number): Promise<boolean> {
  const session = await connected(port);
  let goaway = false;
  session.on('goaway', () => (goaway = true));
  session.on('error', () => undefined);
  try {
    for (let i = 0; i < n && !goaway && !session.closed && !session.destroyed; i++) {
      const stream = session.request({ ':method': 'POST', ':path': '/t.T/Hold', 'content-type': 'application/grpc', te: 'trailers' });
      stream.on('error', () => undefined);
      await new Promise<void>((resolve) => setImmediate(resolve));
      stream.close(constants.NGHTTP2_CANCEL);
      if (i % 50 === 0) await new Promise<void>((resolve) => setImmediate(resolve));
    }
    // A ping round trip: a GOAWAY the resets caused has arrived by its answer.
    await new Promise<void>((resolve) => (session.closed || session.destroyed ? resolve() : session.ping(() => resolve())));
    return goaway;
  } finally {
    session.destroy();
  }
}

describe('ext_proc stream resets from Envoy', () => {
  it('1,200 resets in a burst on one connection leave it open', async () => {
    const server = holdingServer();
    allowEnvoyStreamResets(server);
    const port = await bind(server);
    try {
      assert.equal(await resetStreams(port, 1200), false);
      assert.ok(EXTPROC_STREAM_RESETS.perSecond >= 10_000);
    } finally {
      server.forceShutdown();
    }
  });
  it('the allowance is what the HTTP/2 server enforces (a tiny one ends the connection)', async () => {
    const server = holdingServer();
    allowEnvoyStreamResets(server, { burst: 10, perSecond: 1 });
    const port = await bind(server);
    try {
      assert.equal(await resetStreams(port, 200), true);
    } finally {
      server.forceShutdown();
    }
  });
});
