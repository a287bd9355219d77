import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readSettings } from './settings.js';

describe('settings', () => {
  it('defaults to file mode and requires a config directory there', () => {
    assert.deepEqual(readSettings(['--config-dir', '/cfg']).source, { kind: 'file', configDir: '/cfg' });
    assert.throws(() => readSettings([]), /--config-dir/);
  });

  it('reads the Kubernetes mode options', () => {
    const s = readSettings(['--source', 'kubernetes', '--namespace', 'ai', '--gateway-config', '/etc/g.yaml', '--lease-name', 'l']);
    assert.deepEqual(s.source, {
      kind: 'kubernetes',
      namespace: 'ai',
      secretSelector: 'tollgate.dev/secret=true',
      gatewayConfigFile: '/etc/g.yaml',
      leaseName: 'l',
    });
  });

  it('admin actions are off unless a pod token file is named', () => {
    assert.equal(readSettings(['--config-dir', '/cfg']).podTokenFile, undefined);
    assert.equal(readSettings(['--config-dir', '/cfg', '--pod-token-file', '/run/tollgate/pod-token']).podTokenFile, '/run/tollgate/pod-token');
  });

  it('refuses an unknown source', () => {
    assert.throws(() => readSettings(['--source', 'etcd']), /--source must be file or kubernetes/);
  });
});
