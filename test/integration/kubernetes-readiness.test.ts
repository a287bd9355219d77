/**
 * Readiness in Kubernetes mode: a Tollgate that starts while the API server is down is alive but
 * not ready (Envoy gets no traffic routed to a gateway with no config), keeps retrying, and turns
 * ready only after its first full sync once the API server is back.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT } from '../../src/dev/envoy-config.js';
import { ManagedProcess, freePort, waitFor } from '../../src/dev/local-stack.js';
import { startControlPlane, type ControlPlane } from '../harness/control-plane.js';

describe('Kubernetes mode readiness', () => {
  let cp: ControlPlane;
  let gateway: ManagedProcess | undefined;
  before(async () => {
    cp = await startControlPlane();
    await cp.kubectl(['apply', '-f', join(REPO_ROOT, 'crds')]);
    await cp.kubectl(['create', 'namespace', 'ready-test']);
  });
  after(async () => {
    await gateway?.stop();
    await cp?.stop();
  });

  it('is alive but not ready until the first full sync, which waits for the API server', async () => {
    await cp.stopApiServer();
    const adminPort = await freePort();
    const logFile = join(cp.workDir, 'tollgate-readiness.log');
    const child = spawn(
      process.execPath,
      [
        join(REPO_ROOT, 'dist/src/main.js'),
        '--source=kubernetes',
        '--namespace=ready-test',
        `--extproc-address=unix:${join(cp.workDir, 'readiness.sock')}`,
        `--mcp-address=unix:${join(cp.workDir, 'readiness-mcp.sock')}`,
        '--admin-host=127.0.0.1',
        `--admin-port=${adminPort}`,
      ],
      { env: { ...process.env, KUBECONFIG: cp.kubeconfig }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const out = createWriteStream(logFile);
    child.stdout.pipe(out);
    child.stderr.pipe(out);
    gateway = new ManagedProcess('tollgate', child, logFile);
    const status = async (path: string): Promise<number> => (await fetch(`http://127.0.0.1:${adminPort}${path}`)).status;

    await waitFor('admin server up', async () => (await status('/healthz')) === 200);
    for (let i = 0; i < 10; i++) {
      assert.equal(await status('/readyz'), 503, 'not ready without a first sync');
      assert.ok(gateway.running, 'keeps retrying instead of exiting');
      await new Promise((r) => setTimeout(r, 150));
    }
    await cp.startApiServer();
    await waitFor('ready after the first sync', async () => (await status('/readyz')) === 200, 30_000);
  });
});
