import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { errorStatus, planWatchRetry } from './watch-retry.js';

function recordingLogger(): { logger: pino.Logger; lines: Array<{ level: number; msg: string; status?: number }> } {
  const lines: Array<{ level: number; msg: string; status?: number }> = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as { level: number; msg: string }) });
  return { logger, lines };
}

describe('watch retry policy', () => {
  it('reads the status of client-node errors (ApiException.code, watch statusCode)', () => {
    assert.equal(errorStatus({ code: 403 }), 403);
    assert.equal(errorStatus({ statusCode: 410 }), 410);
    assert.equal(errorStatus(new Error('ECONNREFUSED')), undefined);
    assert.equal(errorStatus(null), undefined);
  });

  it('doubles the back-off up to the cap on ordinary failures', () => {
    const { logger, lines } = recordingLogger();
    assert.deepEqual(planWatchRetry(new Error('reset'), 500, 30_000, logger, 'apikeys'), { delayMs: 500, nextBackoffMs: 1000 });
    assert.deepEqual(planWatchRetry(new Error('reset'), 20_000, 30_000, logger, 'apikeys'), { delayMs: 20_000, nextBackoffMs: 30_000 });
    assert.equal(lines[0]?.level, 40);
    assert.match(lines[0]?.msg ?? '', /keeping the last known objects/);
  });

  it('retries a 429 within a second without growing the back-off', () => {
    const { logger } = recordingLogger();
    assert.deepEqual(planWatchRetry({ code: 429 }, 8000, 30_000, logger, 'apikeys'), { delayMs: 1000, nextBackoffMs: 8000 });
  });

  it('logs RBAC and missing-CRD failures as errors that say what to fix', () => {
    const { logger, lines } = recordingLogger();
    planWatchRetry({ code: 403 }, 500, 30_000, logger, 'apikeys');
    planWatchRetry({ code: 404 }, 500, 30_000, logger, 'apikeys');
    assert.deepEqual(lines.map((l) => [l.level, l.status]), [[50, 403], [50, 404]]);
    assert.match(lines[0]?.msg ?? '', /RBAC/);
    assert.match(lines[1]?.msg ?? '', /CRDs installed/);
  });
});
