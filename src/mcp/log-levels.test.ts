import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseLevelChange } from './cancel-relay.js';
import { belowLevel, isLogLevel, LogLevels } from './log-levels.js';
import { SESSION_MAX_AGE_MS } from './session.js';

describe('client log levels (logging/setLevel)', () => {
  it('knows the MCP levels and which messages are below a minimum', () => {
    assert.equal(isLogLevel('warning'), true);
    assert.equal(isLogLevel('verbose'), false);
    assert.equal(isLogLevel(3), false);
    assert.equal(belowLevel('info', 'warning'), true);
    assert.equal(belowLevel('warning', 'warning'), false);
    assert.equal(belowLevel('emergency', 'warning'), false);
    assert.equal(belowLevel('debug', undefined), false, 'no level set: everything is relayed');
  });

  it('an upstream is told the most verbose level of the live sessions covering it', () => {
    const levels = new LogLevels();
    assert.deepEqual([...levels.set('s1', 'warning', ['ns/a', 'ns/b'], 0)].sort(), ['ns/a', 'ns/b']);
    levels.set('s2', 'debug', ['ns/a'], 0);
    assert.equal(levels.upstreamLevel('ns/a'), 'debug');
    assert.equal(levels.upstreamLevel('ns/b'), 'warning');
    assert.equal(levels.get('s1'), 'warning');
    // s2 raises its level, then ends: ns/a goes back to s1's warning.
    levels.set('s2', 'error', ['ns/a'], 1);
    assert.equal(levels.upstreamLevel('ns/a'), 'warning');
    assert.deepEqual([...levels.set('s2', undefined, [], 2)], ['ns/a']);
    assert.equal(levels.get('s2'), undefined);
    assert.equal(levels.upstreamLevel('ns/a'), 'warning');
    levels.set('s1', undefined, [], 3);
    assert.equal(levels.upstreamLevel('ns/a'), undefined);
    assert.equal(levels.size, 0);
  });

  it('forgets sessions older than a sealed session may live', () => {
    const levels = new LogLevels();
    levels.set('old', 'debug', ['ns/a'], 0);
    levels.set('new', 'error', ['ns/a'], SESSION_MAX_AGE_MS);
    assert.equal(levels.upstreamLevel('ns/a'), 'debug');
    const touched = levels.set('newer', 'error', ['ns/b'], SESSION_MAX_AGE_MS + 1);
    assert.ok(touched.has('ns/a'), 'the expiry changed ns/a');
    assert.equal(levels.get('old'), undefined);
    assert.equal(levels.upstreamLevel('ns/a'), 'error');
  });

  it('parses level changes from other replicas, refusing malformed ones', () => {
    assert.deepEqual(parseLevelChange('{"s":"abc","l":"info","v":["ns/a"]}'), { session: 'abc', level: 'info', servers: ['ns/a'] });
    assert.deepEqual(parseLevelChange('{"s":"abc","l":null,"v":[]}'), { session: 'abc', level: undefined, servers: [] });
    for (const bad of ['nope', '{"s":"abc","l":"loud","v":[]}', '{"s":"","l":"info","v":[]}', '{"s":"abc","l":"info","v":[1]}', `{"s":"${'x'.repeat(200)}","l":"info","v":[]}`]) {
      assert.equal(parseLevelChange(bad), undefined, bad);
    }
  });
});
