import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { describe, it } from 'node:test';
import { AdminAuthorizer, credentialFromToken } from '../admin/authorizer.js';
import { adminRoutes, closeAdminServer, startAdminServer, type Readiness } from './http-server.js';
import { createLogger } from './logger.js';
import { registry } from './metrics.js';

const logger = createLogger('test');
logger.level = 'silent';
const TOKEN = 't'.repeat(43);

async function start(t: { after(fn: () => Promise<void>): void }, readiness: () => Readiness = () => ({ ready: true })) {
  const drains: string[] = [];
  const admin = await startAdminServer({
    host: '127.0.0.1',
    port: 0,
    readiness,
    authorizer: new AdminAuthorizer([credentialFromToken('pod', TOKEN, ['lifecycle'])]),
    drain: (reason) => {
      drains.push(reason);
      return Promise.resolve({ drained: true, waitedMs: 0 });
    },
    logger,
  });
  t.after(() => closeAdminServer(admin.server, 1000));
  const call = async (path: string, init: RequestInit = {}): Promise<{ status: number; body: string; headers: Headers }> => {
    const res = await fetch(`http://127.0.0.1:${admin.port}${path}`, init);
    return { status: res.status, body: await res.text(), headers: res.headers };
  };
  return { call, drains };
}

describe('admin server', () => {
  it('actions need the token: without it 401 whatever the method, and nothing is drained', async (t) => {
    const { call, drains } = await start(t);
    for (const method of ['GET', 'POST', 'PUT', 'DELETE']) {
      const r = await call('/drain', { method });
      assert.equal(r.status, 401, `${method} /drain without a token`);
      assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer/);
    }
    assert.equal((await call('/drain', { method: 'POST', headers: { authorization: `Bearer ${'x'.repeat(43)}` } })).status, 401);
    assert.equal((await call('/drain?token=' + TOKEN, { method: 'POST' })).status, 401, 'a token in the query string is not a credential');
    assert.deepEqual(drains, []);
    assert.equal((await call('/readyz')).status, 200);
    const metrics = await registry.getSingleMetricAsString('tollgate_admin_denied_total');
    assert.match(metrics, /tollgate_admin_denied_total\{path="\/drain",reason="missing"\} [1-9]/);
    assert.match(metrics, /tollgate_admin_denied_total\{path="\/drain",reason="invalid"\} [1-9]/);
  });

  it('with the token: GET /drain is 405, POST /drain drains and answers the result', async (t) => {
    const { call, drains } = await start(t);
    const auth = { authorization: `Bearer ${TOKEN}` };
    const get = await call('/drain', { headers: auth });
    assert.equal(get.status, 405);
    assert.equal(get.headers.get('allow'), 'POST');
    assert.deepEqual(drains, []);
    const post = await call('/drain', { method: 'POST', headers: auth });
    assert.equal(post.status, 200);
    assert.deepEqual(JSON.parse(post.body), { drained: true, waitedMs: 0 });
    assert.deepEqual(drains, ['POST /drain']);
  });

  it('read-only endpoints are open; readiness says why it is not ready', async (t) => {
    let readiness: Readiness = { ready: false, reason: 'starting' };
    const { call } = await start(t, () => readiness);
    assert.deepEqual([(await call('/healthz')).status, (await call('/healthz')).body], [200, 'ok\n']);
    assert.deepEqual(await call('/readyz').then((r) => [r.status, r.body]), [503, 'starting: config not loaded\n']);
    readiness = { ready: true };
    assert.deepEqual(await call('/readyz').then((r) => [r.status, r.body]), [200, 'ready\n']);
    readiness = { ready: false, reason: 'draining' };
    assert.deepEqual(await call('/readyz').then((r) => [r.status, r.body]), [503, 'draining\n']);
    const metrics = await call('/metrics');
    assert.equal(metrics.status, 200);
    assert.match(metrics.body, /tollgate_process_/);
    assert.equal((await call('/metrics', { method: 'POST' })).status, 405);
    assert.equal((await call('/healthz', { method: 'HEAD' })).status, 200);
  });

  it('a client must send its request in time, but a drain may take longer than that to answer', async (t) => {
    const admin = await startAdminServer({
      host: '127.0.0.1',
      port: 0,
      readiness: () => ({ ready: true }),
      authorizer: new AdminAuthorizer([credentialFromToken('pod', TOKEN, ['lifecycle'])]),
      drain: () => new Promise((r) => setTimeout(() => r({ drained: true, waitedMs: 1500 }), 1500)),
      logger,
      requestTimeoutMs: 400,
    });
    t.after(() => closeAdminServer(admin.server, 1000));
    const started = Date.now();
    const res = await fetch(`http://127.0.0.1:${admin.port}/drain`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(res.status, 200);
    assert.deepEqual(JSON.parse(await res.text()), { drained: true, waitedMs: 1500 });
    assert.ok(Date.now() - started >= 1400);

    // Headers that never finish: the connection is closed, it is not held open.
    const slowStart = Date.now();
    const slow = connect(admin.port, '127.0.0.1');
    slow.write('GET /readyz HTTP/1.1\r\nHost: x\r\n');
    const closedAfter = await new Promise<number>((resolve) => {
      slow.on('error', () => undefined);
      slow.resume();
      slow.on('close', () => resolve(Date.now() - slowStart));
    });
    assert.ok(closedAfter < 2000, `slow client held for ${closedAfter} ms`);
  });

  it('anything not in the route table is 404', async (t) => {
    const { call } = await start(t);
    for (const path of ['/', '/drain/', '/drain/now', '/Drain', '//drain', '/admin', '/quitquitquit', '/debug/pprof', '/metrics/x', '/readyz/', '/usage', '/healthz.json']) {
      assert.equal((await call(path, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } })).status, 404, path);
      assert.equal((await call(path)).status, 404, path);
    }
  });

  it('the route table: open routes only read, every other route needs a scope', () => {
    const routes = adminRoutes({ readiness: () => ({ ready: true }), drain: () => Promise.resolve() });
    for (const r of routes) {
      if (r.access.kind === 'open') assert.ok(r.methods.every((m) => m === 'GET' || m === 'HEAD'), `${r.path} is open, so it must only read`);
    }
    assert.deepEqual(routes.map((r) => r.path).sort(), ['/admin/usage', '/drain', '/healthz', '/metrics', '/readyz']);
    assert.deepEqual(routes.find((r) => r.path === '/admin/usage')?.access, { kind: 'token', scope: 'reports' });
  });
});
