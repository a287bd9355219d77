import assert from 'node:assert/strict';
import { connect, type ClientHttp2Session } from 'node:http2';
import { describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { EXTPROC_WINDOWS, widenFlowControlWindows } from './flow-control.js';

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
