import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { describe, it } from 'node:test';
import { createLogger } from '../observability/logger.js';
import { Drainer } from './drain.js';

const logger = createLogger('test');
logger.level = 'silent';

describe('drain', () => {
  it('waits for in-flight requests to reach zero for the quiet period, asking Envoy to drain first', async () => {
    const calls: string[] = [];
    const envoy = createServer((req, res) => {
      calls.push(`${req.method} ${req.url}`);
      res.end('OK');
    });
    await new Promise<void>((r) => envoy.listen(0, '127.0.0.1', () => r()));
    const port = (envoy.address() as { port: number }).port;
    let open = 2;
    setTimeout(() => (open = 0), 150);
    const drainer = new Drainer({ logger, inflight: () => open, envoyAdminUrl: `http://127.0.0.1:${port}`, graceMs: 5000, quietMs: 100, pollMs: 10 });
    assert.equal(drainer.draining, false);
    const first = drainer.drain('test');
    assert.equal(drainer.draining, true);
    assert.equal(drainer.drain('again'), first, 'one drain, shared');
    const result = await first;
    envoy.close();
    assert.equal(result.drained, true);
    assert.ok(result.waitedMs >= 240, `waited ${result.waitedMs} ms`);
    assert.deepEqual(calls, ['POST /drain_listeners?graceful']);
  });

  it('gives up after the grace period and says how many were left; an absent Envoy is not fatal', async () => {
    const drainer = new Drainer({ logger, inflight: () => 3, envoyAdminUrl: 'http://127.0.0.1:1', graceMs: 200, pollMs: 10 });
    const result = await drainer.drain('test');
    assert.deepEqual({ drained: result.drained, left: (result as { left: number }).left }, { drained: false, left: 3 });
  });
});
