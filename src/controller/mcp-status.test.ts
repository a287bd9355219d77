import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { discoveryPatch, discoveryUpToDate, toolsCondition, TOOLS_DISCOVERED } from './mcp-status.js';

describe('MCPServer discovery status', () => {
  const now = new Date(Date.now());
  const ready = { type: 'Ready', status: 'True' as const, reason: 'Accepted', message: 'served', lastTransitionTime: '2026-01-01T00:00:00Z' };
  const obj = { metadata: { generation: 3 }, status: { conditions: [ready] } };

  it('up: True/Discovered with the tool count; down: False/UpstreamUnavailable with the reason', () => {
    const up = toolsCondition(obj, { state: 'up', tools: 4 }, now);
    assert.deepEqual([up.type, up.status, up.reason, up.message, up.observedGeneration], [TOOLS_DISCOVERED, 'True', 'Discovered', '4 tools published', 3]);
    const down = toolsCondition(obj, { state: 'down', message: 'connection refused' }, now);
    assert.deepEqual([down.status, down.reason, down.message], ['False', 'UpstreamUnavailable', 'connection refused']);
  });

  it('the patch keeps the Ready condition and sets tools; an unchanged status needs no patch', () => {
    const wanted = toolsCondition(obj, { state: 'up', tools: 4 }, now);
    const patch = discoveryPatch(obj, wanted, 4);
    assert.deepEqual(patch.status.conditions.map((c) => c.type), ['Ready', TOOLS_DISCOVERED]);
    assert.equal(patch.status.tools, 4);
    assert.equal(discoveryUpToDate(obj, wanted, 4), false);
    const written = { ...obj, status: patch.status };
    assert.equal(discoveryUpToDate(written, toolsCondition(written, { state: 'up', tools: 4 }, new Date(now.getTime() + 60_000)), 4), true);
    assert.equal(discoveryUpToDate(written, toolsCondition(written, { state: 'up', tools: 5 }, now), 5), false);
  });
});
