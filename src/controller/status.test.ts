import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { READY, readyCondition, statusPatch, statusUpToDate } from './status.js';

const now = new Date('2026-05-01T10:00:00.123Z');

describe('status conditions', () => {
  it('says Ready=True/Accepted for a served resource, with the generation it saw', () => {
    const c = readyCondition({ metadata: { generation: 3 } }, undefined, now);
    assert.deepEqual(c, {
      type: READY,
      status: 'True',
      reason: 'Accepted',
      message: 'served by the gateway',
      lastTransitionTime: '2026-05-01T10:00:00Z',
      observedGeneration: 3,
    });
  });

  it('carries the problem reason and message when not served', () => {
    const c = readyCondition({ metadata: { generation: 1 } }, { reason: 'SecretNotFound', message: 'Secret x (key y) not found or empty' }, now);
    assert.equal(c.status, 'False');
    assert.equal(c.reason, 'SecretNotFound');
    assert.match(c.message, /Secret x/);
  });

  it('keeps lastTransitionTime while the status does not flip', () => {
    const obj = {
      metadata: { generation: 2 },
      status: {
        observedGeneration: 1,
        conditions: [{ type: READY, status: 'True' as const, reason: 'Accepted', message: 'served by the gateway', lastTransitionTime: '2026-01-01T00:00:00Z', observedGeneration: 1 }],
      },
    };
    assert.equal(readyCondition(obj, undefined, now).lastTransitionTime, '2026-01-01T00:00:00Z');
    assert.equal(readyCondition(obj, { reason: 'Invalid', message: 'x' }, now).lastTransitionTime, '2026-05-01T10:00:00Z');
  });

  it('is up to date only when reason, message and generation all match', () => {
    const obj = { metadata: { generation: 2 }, status: { observedGeneration: 2, conditions: [readyCondition({ metadata: { generation: 2 } }, undefined, now)] } };
    assert.ok(statusUpToDate(obj, readyCondition(obj, undefined, now)));
    assert.ok(!statusUpToDate(obj, readyCondition(obj, { reason: 'DuplicateKey', message: 'same key as ApiKey a/b' }, now)));
    assert.ok(!statusUpToDate({ ...obj, metadata: { generation: 3 } }, readyCondition({ ...obj, metadata: { generation: 3 } }, undefined, now)));
  });

  it('patches only observedGeneration and conditions, keeping other condition types', () => {
    const other = { type: 'Usage', status: 'True' as const, reason: 'x', message: 'y', lastTransitionTime: '2026-01-01T00:00:00Z' };
    const obj = { metadata: { generation: 4 }, status: { conditions: [other] } };
    const wanted = readyCondition(obj, undefined, now);
    assert.deepEqual(statusPatch(obj, wanted), { status: { observedGeneration: 4, conditions: [other, wanted] } });
  });
});
