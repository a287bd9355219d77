import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import type { McpServerEntry } from '../config/mcp.js';
import { UpstreamError, UpstreamPool } from './upstreams.js';

describe('upstream pool', () => {
  // Accepts connections and never answers: a hung MCP server.
  const sockets = new Set<Socket>();
  const hung = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const pool = new UpstreamPool(pino({ level: 'silent' }));
  after(async () => {
    await pool.close();
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => hung.close(() => r()));
  });

  it('times out a hung upstream once, then answers from memory during the back-off (no second wait)', async () => {
    await new Promise<void>((r) => hung.listen(0, '127.0.0.1', () => r()));
    const address = hung.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const entry: McpServerEntry = {
      id: 'tools/hung',
      namespace: 'tools',
      name: 'hung',
      upstream: { url: `http://127.0.0.1:${port}/mcp`, transport: 'streamable-http' },
      headers: {},
      timeoutMs: 300,
      maxTotalTimeoutMs: 600_000,
      filter: { include: undefined, includeRegex: [], exclude: new Set(), excludeRegex: [] },
      httpTools: [],
      description: '',
      owner: '',
      tags: [],
      connectionFingerprint: 'x',
    };
    const t0 = performance.now();
    await assert.rejects(pool.tools(entry), (e: unknown) => e instanceof UpstreamError && e.kind === 'timeout');
    const first = performance.now() - t0;
    assert.ok(first >= 250, `the first discovery waited for the timeout (${first.toFixed(0)} ms)`);
    const t1 = performance.now();
    await assert.rejects(pool.tools(entry), (e: unknown) => e instanceof UpstreamError && e.kind === 'timeout');
    assert.ok(performance.now() - t1 < 100, 'the second answer comes from memory');
    assert.equal(pool.health(entry).state, 'down');
  });

  it("initialize's capability probe waits at most its bound for a hung upstream, then not again during the back-off", async () => {
    const address = hung.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const entry: McpServerEntry = {
      id: 'tools/hung-probe',
      namespace: 'tools',
      name: 'hung-probe',
      upstream: { url: `http://127.0.0.1:${port}/mcp`, transport: 'streamable-http' },
      headers: {},
      timeoutMs: 5_000,
      maxTotalTimeoutMs: 600_000,
      filter: { include: undefined, includeRegex: [], exclude: new Set(), excludeRegex: [] },
      httpTools: [],
      description: '',
      owner: '',
      tags: [],
      connectionFingerprint: 'y',
    };
    const t0 = performance.now();
    await pool.probe([entry], 200);
    const first = performance.now() - t0;
    assert.ok(first >= 150 && first < 2_000, `the first probe waited for its bound, not the 5 s timeout (${first.toFixed(0)} ms)`);
    const t1 = performance.now();
    await pool.probe([entry], 200);
    assert.ok(performance.now() - t1 < 100, 'the second probe does not wait');
    assert.equal(pool.mayLogServer(entry), true, 'capabilities unknown: logging may come');
  });
});
