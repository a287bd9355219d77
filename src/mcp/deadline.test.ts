import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CallDeadline } from './deadline.js';
import { UpstreamError } from './upstream-error.js';

describe('tool call deadline (silence timeout restarted by progress, absolute cap)', () => {
  it('expires after idleMs of silence, naming timeoutSeconds', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const d = new CallDeadline(1000, 10_000, { server: 'ns/s', what: 'tools/call x' });
    d.start();
    t.mock.timers.tick(999);
    assert.equal(d.signal.aborted, false);
    t.mock.timers.tick(1);
    assert.equal(d.signal.aborted, true);
    const reason = d.signal.reason as UpstreamError;
    assert.ok(reason instanceof UpstreamError);
    assert.equal(reason.kind, 'timeout');
    assert.match(reason.message, /MCP server ns\/s did not answer tools\/call x within 1000 ms \(timeoutSeconds; progress/);
  });

  it('progress restarts the silence clock but not the cap', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const d = new CallDeadline(1000, 3500, { server: 'ns/s', what: 'tools/call x' });
    d.start();
    for (let i = 0; i < 11; i++) {
      t.mock.timers.tick(300);
      assert.equal(d.signal.aborted, false, `alive after ${(i + 1) * 300} ms of progress`);
      d.touch();
    }
    t.mock.timers.tick(200); // 3500 ms in total
    assert.equal(d.signal.aborted, true);
    assert.match((d.signal.reason as Error).message, /did not finish tools\/call x within maxTotalTimeoutSeconds \(3500 ms\)/);
  });

  it('progress before start() and after dispose() changes nothing; a disposed deadline never fires', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const d = new CallDeadline(100, 200, { server: 'ns/s', what: 'w' });
    d.touch();
    t.mock.timers.tick(1000);
    assert.equal(d.signal.aborted, false, 'no clock runs before start()');
    d.start();
    d.dispose();
    d.touch();
    t.mock.timers.tick(1000);
    assert.equal(d.signal.aborted, false);
  });
});
