import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { realClockEnv } from './real-clock.js';

describe('realClockEnv', () => {
  it('drops libfaketime from the preload and its settings, keeps everything else', () => {
    const env = realClockEnv({
      PATH: '/usr/bin',
      LD_PRELOAD: '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1:/opt/other.so',
      FAKETIME: '+400d',
      FAKETIME_DONT_RESET: '1',
      DONT_FAKE_MONOTONIC: '1',
    });
    assert.deepEqual(env, { PATH: '/usr/bin', LD_PRELOAD: '/opt/other.so' });
  });

  it('removes LD_PRELOAD entirely when it only held libfaketime', () => {
    assert.deepEqual(realClockEnv({ LD_PRELOAD: '/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1', HOME: '/root' }), { HOME: '/root' });
  });
});
