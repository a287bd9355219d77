/**
 * docs/security.md against reality. The doc's tables are parsed and checked against a real Tollgate
 * and a real Envoy running the chart's own bootstrap:
 * - every listener the chart renders is listed, at the address the doc gives, and each process
 *   listens (per /proc) on exactly the listeners the doc gives it: an unlisted one fails;
 * - every Tollgate admin endpoint in the doc answers as documented without and with the pod token,
 *   the doc lists exactly the server's route table, and anything else answers 404;
 * - the Envoy health listener answers as documented; the client listener serves none of the admin
 *   or health paths;
 * - POST /drain with the pod token drains and the process exits, as documented.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse, parseAllDocuments } from 'yaml';
import { REPO_ROOT } from '../../src/dev/envoy-config.js';
import { freePort, startEnvoy, startGateway, type GatewayProcess, type ManagedProcess } from '../../src/dev/local-stack.js';
import { adminRoutes } from '../../src/observability/http-server.js';
import { readSettings } from '../../src/settings.js';
import { adaptChartEnvoyConfig, controlPlaneBin, runTool } from '../harness/control-plane.js';
import { listeningSockets } from '../harness/sockets.js';
import { basicConfig, TEST_KEY } from '../harness/stack.js';

/** The rows of the first table after the heading `## <heading>`, keyed by the table's header cells. */
async function docTable(heading: string): Promise<Record<string, string>[]> {
  const lines = (await readFile(join(REPO_ROOT, 'docs/security.md'), 'utf8')).split('\n');
  const at = lines.findIndex((l) => l.trim() === `## ${heading}`);
  assert.ok(at >= 0, `docs/security.md has no "## ${heading}" section`);
  const start = lines.findIndex((l, i) => i > at && l.startsWith('|'));
  const table: string[][] = [];
  for (let i = start; i < lines.length && lines[i]?.startsWith('|'); i++) {
    table.push(lines[i]!.slice(1, lines[i]!.trimEnd().length - 1).split('|').map((c) => c.trim()));
  }
  const [header = [], , ...rows] = table;
  assert.ok(rows.length > 0, `the "${heading}" table has no rows`);
  return rows.map((cells) => Object.fromEntries(header.map((h, i) => [h, cells[i] ?? ''])));
}

/** The `quoted` parts of a cell. */
const ticks = (cell: string | undefined): string[] => [...(cell ?? '').matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
/** The first HTTP status in a cell. */
const status = (cell: string | undefined): number => {
  const m = /\b([1-5]\d\d)\b/.exec(cell ?? '');
  assert.ok(m, `no HTTP status in "${cell}"`);
  return Number(m[1]);
};

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH'] as const;
/** Paths that must not be served by the admin server or the health listener ("any other path"). */
const UNLISTED = ['/', '/drain/', '/drain/now', '/Drain', '//drain', '/DRAIN', '/readyz/', '/metrics/x', '/healthz.json', '/admin', '/debug/pprof', '/quitquitquit', '/config_dump', '/stats', '/ready', '/readyz/../drain', '/usage', '/v1/models', '/x'];

/** Status of one request with the path sent exactly as given (fetch would normalise `/a/../b`). */
function rawStatus(port: number, method: string, path: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

interface Probe {
  readonly method: string;
  readonly path: string;
  readonly anonymous: number;
  readonly withToken: number;
}

/** Expands an endpoint table ("`GET`, `HEAD`", "other methods", "any other path") into probes. */
function probes(rows: readonly Record<string, string>[], anonymousCol: string, tokenCol: string): Probe[] {
  const explicit = new Map<string, Set<string>>();
  for (const r of rows) {
    if (r['Method'] === 'any' || r['Method'] === 'other methods') continue;
    for (const p of ticks(r['Path'])) for (const m of ticks(r['Method'])) (explicit.get(p) ?? explicit.set(p, new Set()).get(p)!).add(m);
  }
  const out: Probe[] = [];
  for (const r of rows) {
    const unlisted = r['Path'] === 'any other path';
    const paths = unlisted ? UNLISTED.filter((p) => !explicit.has(p)) : ticks(r['Path']);
    assert.ok(paths.length > 0, `row without a path: ${JSON.stringify(r)}`);
    for (const path of paths) {
      const methods =
        r['Method'] === 'any' ? [...METHODS] : r['Method'] === 'other methods' ? METHODS.filter((m) => !explicit.get(path)?.has(m)) : ticks(r['Method']);
      assert.ok(methods.length > 0, `row without a method: ${JSON.stringify(r)}`);
      for (const method of methods) out.push({ method, path, anonymous: status(r[anonymousCol]), withToken: status(r[tokenCol]) });
    }
  }
  return out;
}

describe('security inventory (docs/security.md) against the running processes', () => {
  let work: string;
  let gw: GatewayProcess;
  let envoy: { process: ManagedProcess; port: number; adminPort: number };
  let healthPort: number;
  let chartArgs: string[];
  let bootstrap: {
    admin: { address: { socket_address: { address: string; port_value: number } } };
    static_resources: {
      listeners: { name: string; address?: { socket_address: { address: string; port_value: number } } }[];
      clusters: { name: string; load_assignment?: { endpoints: { lb_endpoints: { endpoint: { address: { pipe?: { path: string } } } }[] }[] } }[];
    };
  };
  const stops: (() => Promise<void>)[] = [];

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'tg-inventory-'));
    const helm = join(await controlPlaneBin(), 'helm');
    const docs = parseAllDocuments((await runTool(helm, ['template', 't', join(REPO_ROOT, 'charts/tollgate'), '--namespace', 'ai'], {})).stdout)
      .map((d) => d.toJS() as Record<string, unknown>)
      .filter(Boolean);
    const cm = docs.find((d) => d['kind'] === 'ConfigMap' && (d['metadata'] as { name: string }).name === 't-tollgate-envoy');
    const envoyText = (cm?.['data'] as Record<string, string>)['envoy.yaml'] ?? '';
    bootstrap = parse(envoyText) as typeof bootstrap;
    const deploy = docs.find((d) => d['kind'] === 'Deployment') as { spec: { template: { spec: { containers: { name: string; args: string[] }[] } } } };
    chartArgs = deploy.spec.template.spec.containers.find((c) => c.name === 'tollgate')!.args;

    // Tollgate as local runs start it (file config, loopback admin), Envoy with the chart's bootstrap.
    const configDir = join(work, 'config');
    await mkdir(configDir);
    for (const [name, text] of Object.entries(basicConfig())) await writeFile(join(configDir, name), text.replace('{{FAKE:primary}}', 'http://127.0.0.1:9/v1'));
    const ports = { listenPort: await freePort(), adminPort: await freePort(), healthPort: await freePort() };
    healthPort = ports.healthPort;
    gw = await startGateway({ workDir: work, configDir, extraArgs: ['--envoy-admin-url', `http://127.0.0.1:${ports.adminPort}`] });
    stops.push(() => gw.process.stop());
    envoy = await startEnvoy({
      workDir: work,
      extprocSocket: gw.socket,
      listenPort: ports.listenPort,
      adminPort: ports.adminPort,
      configText: adaptChartEnvoyConfig(envoyText, { ...ports, socket: gw.socket }),
    });
    stops.push(() => envoy.process.stop());
  });
  after(async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('lists every listener: the chart renders each at the documented address, and the processes listen on exactly those', async () => {
    const rows = await docTable('Listeners');
    const settings = readSettings([...chartArgs, '--namespace=ai']);
    const byName = new Map(rows.map((r) => [r['Listener'], r]));
    const documented = (name: string): string => {
      const row = byName.get(name);
      assert.ok(row, `docs/security.md lists no "${name}"`);
      return ticks(row['Address in the chart'])[0] ?? '';
    };
    const sock = (a: { socket_address: { address: string; port_value: number } } | undefined): string => `${a?.socket_address.address}:${a?.socket_address.port_value}`;
    const listener = (name: string) => bootstrap.static_resources.listeners.find((l) => l.name === name)?.address;

    // What the chart renders, listener by listener.
    const rendered = new Map<string, { address: string; process: 'Envoy' | 'Tollgate'; local: string }>([
      ['Envoy client listener', { address: sock(listener('tollgate')), process: 'Envoy', local: `tcp 127.0.0.1:${envoy.port}` }],
      ['Envoy health listener', { address: sock(listener('envoy_health')), process: 'Envoy', local: `tcp 127.0.0.1:${healthPort}` }],
      ['Envoy admin', { address: sock(bootstrap.admin.address), process: 'Envoy', local: `tcp 127.0.0.1:${envoy.adminPort}` }],
      ['Tollgate admin', { address: `${settings.adminHost}:${settings.adminPort}`, process: 'Tollgate', local: `tcp 127.0.0.1:${gw.adminPort}` }],
      ['ext_proc socket', { address: settings.extprocAddress, process: 'Tollgate', local: `unix ${gw.socket}` }],
      ['MCP socket', { address: settings.mcp.address, process: 'Tollgate', local: `unix ${join(dirname(gw.socket), 'mcp.sock')}` }],
    ]);
    // Every network listener in the bootstrap is one of the above (internal listeners have no address).
    assert.deepEqual(
      bootstrap.static_resources.listeners.filter((l) => l.address).map((l) => l.name).sort(),
      ['envoy_health', 'tollgate'],
      'the chart renders a listener docs/security.md does not list',
    );
    // Envoy dials the same ext_proc socket Tollgate serves.
    const pipe = bootstrap.static_resources.clusters.find((c) => c.name === 'tollgate_extproc')?.load_assignment?.endpoints[0]?.lb_endpoints[0]?.endpoint.address.pipe?.path;
    assert.equal(`unix:${pipe}`, settings.extprocAddress);
    const mcpPipe = bootstrap.static_resources.clusters.find((c) => c.name === 'tollgate_mcp')?.load_assignment?.endpoints[0]?.lb_endpoints[0]?.endpoint.address.pipe?.path;
    assert.equal(`unix:${mcpPipe}`, settings.mcp.address);

    assert.deepEqual([...byName.keys()].sort(), [...rendered.keys()].sort(), 'the doc lists exactly the listeners the pod has');
    for (const [name, r] of rendered) {
      assert.equal(documented(name), r.address, `${name}: the doc says ${documented(name)}, the chart renders ${r.address}`);
      assert.equal(byName.get(name)?.['Process'], r.process);
    }
    assert.ok(documented('Envoy admin').startsWith('127.0.0.1:'), 'Envoy admin must stay on loopback');

    // What the processes really listen on: exactly the documented listeners, nothing more.
    const actual = async (pid: number | undefined): Promise<string[]> => {
      const s = await listeningSockets(pid!);
      return [...s.tcp.map((a) => `tcp ${a}`), ...s.unix.map((p) => `unix ${p}`)].sort();
    };
    for (const process of ['Tollgate', 'Envoy'] as const) {
      const expected = [...rendered.values()].filter((r) => r.process === process).map((r) => r.local).sort();
      const pid = process === 'Tollgate' ? gw.process.child.pid : envoy.process.child.pid;
      assert.deepEqual(await actual(pid), expected, `${process} listens on something docs/security.md does not list (or misses something it does)`);
    }
  });

  it('Tollgate admin: the doc lists exactly the route table, and every endpoint answers as documented without and with the pod token', async () => {
    const rows = await docTable('Tollgate admin endpoints');
    const routes = adminRoutes({ readiness: () => ({ ready: true }), drain: () => Promise.resolve() });
    const list = probes(rows, 'Without a token', 'With the pod token');
    // The doc and the route table agree: same paths, same methods, actions refused without a token.
    const explicitRows = rows.filter((r) => r['Method'] !== 'any' && r['Method'] !== 'other methods');
    assert.deepEqual([...new Set(explicitRows.flatMap((r) => ticks(r['Path'])))].sort(), routes.map((r) => r.path).sort(), 'an admin route is missing from docs/security.md (or the doc lists one the server does not have)');
    for (const route of routes) {
      const documentedMethods = explicitRows.filter((r) => ticks(r['Path']).includes(route.path)).flatMap((r) => ticks(r['Method']));
      assert.deepEqual(documentedMethods.sort(), [...route.methods].sort(), `${route.path}: documented methods`);
      if (route.access.kind === 'token') assert.ok(list.filter((p) => p.path === route.path).every((p) => p.anonymous === 401), `${route.path} is an action: 401 without a token`);
    }

    const token = (await readFile(gw.podTokenFile, 'utf8')).trim();
    const call = (p: Probe, auth: boolean): Promise<number> => rawStatus(gw.adminPort, p.method, p.path, auth ? { authorization: `Bearer ${token}` } : {});
    // Lifecycle actions end the process: probed with the token in the last test.
    const lifecycle = (p: Probe): boolean => routes.some((r) => r.path === p.path && r.access.kind === 'token' && r.access.scope === 'lifecycle' && (r.methods as readonly string[]).includes(p.method));
    const failures: string[] = [];
    for (const p of list) {
      const anon = await call(p, false);
      if (anon !== p.anonymous) failures.push(`${p.method} ${p.path} without a token: ${anon}, documented ${p.anonymous}`);
      if (lifecycle(p)) continue;
      const authed = await call(p, true);
      if (authed !== p.withToken) failures.push(`${p.method} ${p.path} with the pod token: ${authed}, documented ${p.withToken}`);
    }
    assert.deepEqual(failures, []);
    assert.ok(list.some((p) => p.path === '/drain' && p.method === 'GET' && p.anonymous === 401), 'GET /drain is refused');
    // None of that changed anything.
    const ready = await fetch(`http://127.0.0.1:${gw.adminPort}/readyz`);
    assert.deepEqual([ready.status, await ready.text()], [200, 'ready\n']);
  });

  it('Envoy health listener answers as documented; the client listener serves no admin or health path', async () => {
    const failures: string[] = [];
    for (const p of probes(await docTable('Envoy health listener endpoints'), 'Answer', 'Answer')) {
      const got = await rawStatus(healthPort, p.method, p.path, {});
      if (got !== p.anonymous) failures.push(`${p.method} ${p.path}: ${got}, documented ${p.anonymous}`);
    }
    assert.deepEqual(failures, []);

    const client = `http://127.0.0.1:${envoy.port}`;
    for (const path of ['/ready', '/drain', '/healthz', '/readyz', '/metrics', '/stats', '/config_dump', '/quitquitquit', '/drain_listeners']) {
      for (const method of ['GET', 'POST']) {
        for (const headers of [{}, { authorization: `Bearer ${TEST_KEY}` }]) {
          const res = await fetch(`${client}${path}`, { method, headers });
          const body = await res.text();
          assert.equal(res.status, 404, `${method} ${path} on the client listener`);
          assert.equal((JSON.parse(body) as { error: { code: string } }).error.code, 'unknown_url');
        }
      }
    }
    const anonymous = await fetch(`${client}/v1/models`);
    await anonymous.text();
    assert.equal(anonymous.status, 401, 'API paths need a key');
  });

  it('POST /drain with the pod token: 200 once drained, then the process exits', async () => {
    const token = (await readFile(gw.podTokenFile, 'utf8')).trim();
    const exited = gw.process.waitExit();
    const res = await fetch(`http://127.0.0.1:${gw.adminPort}/drain`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200);
    assert.equal((JSON.parse(await res.text()) as { drained: boolean }).drained, true);
    assert.equal(await exited, 0);
  });
});
