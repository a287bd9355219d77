import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger } from '../observability/logger.js';
import { Drainer } from './drain.js';
import { Shutdown } from './shutdown.js';

const logger = createLogger('test');
logger.level = 'silent';

describe('shutdown', () => {
  it('a drain, however it starts, ends with the stop steps and an exit, once', async () => {
    let open = 1;
    const drainer = new Drainer({ logger, inflight: () => open, envoyAdminUrl: undefined, graceMs: 5000, quietMs: 20, pollMs: 5 });
    const events: string[] = [];
    let exited!: (code: number) => void;
    const exit = new Promise<number>((r) => (exited = r));
    const shutdown = new Shutdown({
      logger,
      drainer,
      onBegin: () => events.push('begin'),
      stop: async () => {
        events.push('stop');
      },
      exit: (code) => {
        events.push(`exit ${code}`);
        exited(code);
      },
    });
    const first = shutdown.begin('POST /drain');
    assert.equal(shutdown.begun, true);
    assert.equal(drainer.draining, true);
    assert.equal(shutdown.begin('SIGTERM'), first, 'a second trigger joins the same drain');
    setTimeout(() => (open = 0), 30);
    const result = await first;
    assert.equal(result.drained, true);
    assert.equal(await exit, 0);
    assert.deepEqual(events, ['begin', 'stop', 'exit 0']);
  });

  it('a stop step that hangs or fails still exits, with code 1', async () => {
    for (const stop of [() => new Promise<void>(() => undefined), () => Promise.reject(new Error('boom'))]) {
      const drainer = new Drainer({ logger, inflight: () => 0, envoyAdminUrl: undefined, graceMs: 1000, quietMs: 1, pollMs: 1 });
      let exited!: (code: number) => void;
      const exit = new Promise<number>((r) => (exited = r));
      new Shutdown({ logger, drainer, stop, stopTimeoutMs: 50, exit: exited }).begin('test');
      assert.equal(await exit, 1);
    }
  });
});
