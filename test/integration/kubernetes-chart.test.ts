/**
 * The Helm chart: lint and template are clean, the Envoy bootstrap it renders is envoy/envoy.yaml
 * (same ext_proc filter, processing modes, routes and clusters) plus only the pod's health listener,
 * the optional TLS listener really negotiates HTTP/2 and HTTP/1.1 by ALPN in a real Envoy (h2c
 * without TLS), and the optional NetworkPolicy is accepted by a real API server.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { connect as http2Connect } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { parse, parseAllDocuments } from 'yaml';
import { REPO_ROOT, renderEnvoyConfig } from '../../src/dev/envoy-config.js';
import { freePort, startEnvoy, type ManagedProcess } from '../../src/dev/local-stack.js';
import { adaptChartEnvoyConfig, controlPlaneBin, runTool, startControlPlane } from '../harness/control-plane.js';

const CHART = join(REPO_ROOT, 'charts/tollgate');

interface Bootstrap {
  static_resources: { listeners: { name: string; filter_chains: Record<string, unknown>[] }[]; clusters: { name: string }[] };
}

describe('Helm chart', () => {
  let helm: string;
  let work: string;
  const procs: ManagedProcess[] = [];
  before(async () => {
    helm = join(await controlPlaneBin(), 'helm');
    work = await mkdtemp(join(tmpdir(), 'tg-chart-'));
  });
  after(async () => {
    for (const p of procs) await p.stop();
    await rm(work, { recursive: true, force: true });
  });

  const template = async (...set: string[]): Promise<Record<string, unknown>[]> => {
    const out = await runTool(helm, ['template', 't', CHART, '--namespace', 'ai', ...set.flatMap((s) => ['--set', s])], {});
    return parseAllDocuments(out.stdout).map((d) => d.toJS() as Record<string, unknown>).filter(Boolean);
  };
  const envoyOf = (docs: Record<string, unknown>[]): string => {
    const cm = docs.find((d) => d['kind'] === 'ConfigMap' && (d['metadata'] as { name: string }).name === 't-tollgate-envoy');
    return (cm?.['data'] as Record<string, string>)['envoy.yaml'] ?? '';
  };

  it('lints clean (default values, and with TLS + ServiceMonitor + NetworkPolicy)', async () => {
    for (const set of [[], ['tls.enabled=true', 'tls.secretName=gw-tls', 'serviceMonitor.enabled=true', 'networkPolicy.enabled=true', 'networkPolicy.adminNamespaces={monitoring}']]) {
      const r = await runTool(helm, ['lint', CHART, '--strict', ...set.flatMap((s) => ['--set', s])], {});
      assert.match(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
      assert.doesNotMatch(r.stdout + r.stderr, /\[(WARNING|ERROR)\]/);
    }
  });

  it('refuses bad values through values.schema.json', async () => {
    const r = await runTool(helm, ['template', 't', CHART, '--set', 'envoy.port=80'], {}, { allowFail: true });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /envoy\/port/);
  });

  it('ships envoy/envoy.yaml verbatim and renders the same Envoy config as local runs, plus only the health listener', async () => {
    assert.equal(await readFile(join(CHART, 'files/envoy.yaml'), 'utf8'), await readFile(join(REPO_ROOT, 'envoy/envoy.yaml'), 'utf8'), 'run npm run gen:chart');
    const chart = parse(envoyOf(await template())) as Bootstrap;
    const local = parse(
      await renderEnvoyConfig({
        listenAddress: '0.0.0.0',
        listenPort: 8080,
        adminPort: 9901,
        extprocSocket: '/run/tollgate/extproc.sock',
        maxBodyBytes: 8388608,
        messageTimeout: '2s',
        upstreamCaFile: '/etc/ssl/certs/ca-certificates.crt',
      }),
    ) as Bootstrap;
    assert.deepEqual(chart.static_resources.listeners.map((l) => l.name), [...local.static_resources.listeners.map((l) => l.name), 'envoy_health']);
    assert.deepEqual(chart.static_resources.clusters.map((c) => c.name), [...local.static_resources.clusters.map((c) => c.name), 'envoy_admin']);
    chart.static_resources.listeners.pop();
    chart.static_resources.clusters.pop();
    // Same ext_proc filter and processing modes, routes, local replies and clusters, field by field.
    assert.deepEqual(chart, local);
  });

  it('graceful shutdown: Envoy preStop POSTs /drain with the pod token over loopback, and the pod grace period outlasts the drain', async () => {
    type Container = {
      name: string;
      args?: string[];
      lifecycle?: { preStop?: { exec?: { command: string[] }; httpGet?: unknown } };
      volumeMounts?: { name: string; mountPath: string }[];
    };
    for (const set of [[], ['tollgate.shutdownGraceSeconds=60', 'terminationGracePeriodSeconds=90', 'tollgate.adminPort=9191']]) {
      const docs = await template(...set);
      const deploy = docs.find((d) => d['kind'] === 'Deployment') as {
        spec: { template: { spec: { terminationGracePeriodSeconds: number; containers: Container[]; volumes: { name: string; emptyDir?: { medium?: string } }[] } } };
      };
      const pod = deploy.spec.template.spec;
      const tollgate = pod.containers.find((c) => c.name === 'tollgate')!;
      const envoy = pod.containers.find((c) => c.name === 'envoy')!;
      const arg = (c: Container, name: string): string | undefined => c.args?.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
      const grace = Number(arg(tollgate, 'shutdown-grace-seconds'));
      // No httpGet hook any more: the kubelet would call it from the node, unauthenticated.
      assert.equal(envoy.lifecycle?.preStop?.httpGet, undefined);
      const hook = envoy.lifecycle?.preStop?.exec?.command ?? [];
      assert.equal(hook[0], '/bin/bash');
      const tokenFile = arg(tollgate, 'pod-token-file')!;
      assert.ok(hook[2]?.includes(`cat ${tokenFile}`), 'the hook reads the token Tollgate writes');
      assert.ok(hook[2]?.includes(`/dev/tcp/127.0.0.1/${arg(tollgate, 'admin-port')}`), 'the hook calls the admin port on loopback');
      assert.match(hook[2] ?? '', /POST \/drain HTTP\/1\.1/);
      // The token lives on an in-memory volume that only this pod's two containers mount.
      const mountOf = (c: Container): string | undefined => c.volumeMounts?.find((m) => tokenFile.startsWith(`${m.mountPath}/`))?.name;
      assert.ok(mountOf(tollgate) && mountOf(tollgate) === mountOf(envoy));
      assert.equal(pod.volumes.find((v) => v.name === mountOf(tollgate))?.emptyDir?.medium, 'Memory');
      assert.equal(arg(tollgate, 'envoy-admin-url'), 'http://127.0.0.1:9901');
      assert.ok(pod.terminationGracePeriodSeconds > grace, `terminationGracePeriodSeconds ${pod.terminationGracePeriodSeconds} must exceed the drain grace ${grace}`);
      assert.equal(envoy.args?.[envoy.args.indexOf('--drain-time-s') + 1], String(grace));
    }
    await assert.rejects(template('tollgate.shutdownGraceSeconds=60'), /terminationGracePeriodSeconds must exceed/);
  });

  it('the preStop hook sends exactly POST /drain with the pod token, fails on a refusal, and passes when Tollgate is already gone', async () => {
    const deploy = (await template()).find((d) => d['kind'] === 'Deployment') as { spec: { template: { spec: { containers: { name: string; lifecycle?: { preStop?: { exec?: { command: string[] } } } }[] } } } };
    const [shell = '', ...args] = deploy.spec.template.spec.containers.find((c) => c.name === 'envoy')?.lifecycle?.preStop?.exec?.command ?? [];
    const tokenFile = join(work, 'pod-token');
    await writeFile(tokenFile, 'the-pod-token-the-pod-token-the-pod-token\n');
    const run = (port: number, file = tokenFile): Promise<{ code: number; stderr: string }> =>
      new Promise((resolve) => {
        const script = args.map((a) => a.replaceAll('/run/tollgate/pod-token', file).replaceAll('/dev/tcp/127.0.0.1/9090', `/dev/tcp/127.0.0.1/${port}`));
        execFile(shell, script, (err, _stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stderr }));
      });
    // A stand-in admin port that records what the hook sends and answers with `status`.
    const seen: { method: string | undefined; url: string | undefined; authorization: string | undefined }[] = [];
    let status = 401;
    const server = createHttpServer((req, res) => {
      seen.push({ method: req.method, url: req.url, authorization: req.headers.authorization });
      req.resume();
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end('x\n');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as { port: number }).port;
    try {
      const refused = await run(port);
      assert.equal(refused.code, 1, 'a refused drain fails the hook (the kubelet records it)');
      assert.match(refused.stderr, /POST \/drain failed: HTTP\/1\.1 401 Unauthorized/);
      status = 200;
      assert.equal((await run(port)).code, 0);
      assert.deepEqual(seen, [0, 1].map(() => ({ method: 'POST', url: '/drain', authorization: 'Bearer the-pod-token-the-pod-token-the-pod-token' })));
      assert.equal((await run(port, join(work, 'no-such-token'))).code, 1, 'no token file: the hook fails without calling');
      assert.equal(seen.length, 2);
    } finally {
      await new Promise((r) => server.close(r));
    }
    // Nothing listening (Tollgate already exited): nothing left to drain, Envoy may stop.
    assert.equal((await run(await freePort())).code, 0);
  });

  it('NetworkPolicy: none by default; when enabled the real API server accepts it, gateway port from anywhere, admin port only from the named namespaces', async (t) => {
    assert.ok(!(await template()).some((d) => d['kind'] === 'NetworkPolicy'), 'off by default');
    const cp = await startControlPlane();
    t.after(() => cp.stop());
    await cp.kubectl(['create', 'namespace', 'ai']);
    type Policy = {
      kind: string;
      metadata: { name: string };
      spec: {
        podSelector: { matchLabels: Record<string, string> };
        policyTypes: string[];
        ingress: { ports: { port: number; protocol: string }[]; from?: Record<string, unknown>[] }[];
      };
    };
    const render = async (...set: string[]): Promise<{ text: string; policy: Policy }> => {
      const out = await runTool(helm, ['template', 't', CHART, '--namespace', 'ai', '-s', 'templates/networkpolicy.yaml', ...['networkPolicy.enabled=true', ...set].flatMap((s) => ['--set', s])], {});
      return { text: out.stdout, policy: parse(out.stdout) as Policy };
    };
    const apply = async (text: string): Promise<Policy> => {
      await cp.kubectl(['apply', '-n', 'ai', '-f', '-'], { input: text });
      return JSON.parse((await cp.kubectl(['get', 'networkpolicy', 't-tollgate', '-n', 'ai', '-o', 'json'])).stdout) as Policy;
    };

    const deploy = (await template()).find((d) => d['kind'] === 'Deployment') as { spec: { selector: { matchLabels: Record<string, string> } } };
    const named = await render('networkPolicy.adminNamespaces={monitoring,ops}');
    const stored = await apply(named.text);
    assert.deepEqual(stored.spec.podSelector.matchLabels, deploy.spec.selector.matchLabels, 'selects exactly the gateway pods');
    assert.deepEqual(stored.spec.policyTypes, ['Ingress']);
    assert.deepEqual(stored.spec.ingress, [
      { ports: [{ port: 8080, protocol: 'TCP' }] },
      {
        ports: [{ port: 9090, protocol: 'TCP' }],
        from: [{ namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: ['monitoring', 'ops'] }] } }],
      },
    ]);

    // No namespaces named: the admin port is reachable only from the node (kubelet probes).
    const closed = await apply((await render()).text);
    assert.deepEqual(closed.spec.ingress, [{ ports: [{ port: 8080, protocol: 'TCP' }] }]);

    // Gateway clients narrowed by the user's own peers; the ports follow the values.
    const narrowed = await apply(
      (await render('networkPolicy.gatewayFrom[0].namespaceSelector.matchLabels.team=a', 'envoy.port=8443', 'tollgate.adminPort=9191', 'networkPolicy.adminNamespaces={monitoring}')).text,
    );
    assert.deepEqual(narrowed.spec.ingress.map((r) => r.ports[0]?.port), [8443, 9191]);
    assert.deepEqual(narrowed.spec.ingress[0]?.from, [{ namespaceSelector: { matchLabels: { team: 'a' } } }]);

    // A peer the API server cannot accept is refused there (the chart passes peers through as given).
    const bad = await render('networkPolicy.gatewayFrom[0].ipBlock.cidr=not-a-cidr');
    const refused = await cp.kubectl(['apply', '-n', 'ai', '-f', '-'], { input: bad.text, allowFail: true });
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /cidr/i);
    // A namespace name that cannot exist is refused by the chart's schema before any API call.
    await assert.rejects(render('networkPolicy.adminNamespaces={Not_A_Namespace}'), /adminNamespaces/);
  });

  it('least-privilege Role, non-root read-only pod, probes and PDB', async () => {
    const docs = await template();
    const role = docs.find((d) => d['kind'] === 'Role') as { rules: { resources: string[]; verbs: string[] }[] };
    const verbs = new Set(role.rules.flatMap((r) => r.verbs));
    for (const v of ['delete', 'deletecollection', '*', 'escalate', 'bind']) assert.ok(!verbs.has(v), `Role must not grant ${v}`);
    assert.ok(!docs.some((d) => d['kind'] === 'ClusterRole' || d['kind'] === 'ClusterRoleBinding'), 'nothing cluster-wide');
    const deploy = docs.find((d) => d['kind'] === 'Deployment') as {
      spec: { template: { spec: { securityContext: { runAsNonRoot: boolean }; containers: { name: string; securityContext: { readOnlyRootFilesystem: boolean }; readinessProbe: { httpGet: { path: string } } }[] } } };
    };
    const pod = deploy.spec.template.spec;
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.deepEqual(pod.containers.map((c) => [c.name, c.securityContext.readOnlyRootFilesystem, c.readinessProbe.httpGet.path]), [
      ['tollgate', true, '/readyz'],
      ['envoy', true, '/ready'],
    ]);
    assert.ok(docs.some((d) => d['kind'] === 'PodDisruptionBudget'));
    assert.ok(!docs.some((d) => d['kind'] === 'ServiceMonitor'), 'ServiceMonitor only when enabled');
    assert.ok((await template('serviceMonitor.enabled=true')).some((d) => d['kind'] === 'ServiceMonitor'));
  });

  it('TLS listener from a kubernetes.io/tls Secret: HTTP/2 and HTTP/1.1 by ALPN in a real Envoy; h2c without TLS', async () => {
    const openssl = promisify(execFile);
    await openssl('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'tls.key', '-out', 'tls.crt', '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1'], { cwd: work });
    const ca = await readFile(join(work, 'tls.crt'));
    const run = async (name: string, text: string): Promise<number> => {
      const ports = { listenPort: await freePort(), adminPort: await freePort(), healthPort: await freePort(), socket: join(work, `${name}.sock`), tlsDir: work };
      const envoy = await startEnvoy({
        workDir: join(work, name),
        extprocSocket: ports.socket,
        listenPort: ports.listenPort,
        adminPort: ports.adminPort,
        configText: adaptChartEnvoyConfig(text, ports),
      });
      procs.push(envoy.process);
      return envoy.port;
    };
    const tlsPort = await run('tls', envoyOf(await template('tls.enabled=true', 'tls.secretName=gw-tls')));

    const h2 = http2Connect(`https://127.0.0.1:${tlsPort}`, { ca });
    const h2Status = await new Promise<number>((resolve, reject) => {
      const req = h2.request({ ':path': '/v1/models' });
      req.on('response', (h) => resolve(Number(h[':status'])));
      req.on('error', reject);
      req.end();
    });
    assert.equal(h2.alpnProtocol, 'h2');
    h2.close();
    // No Tollgate behind this Envoy: the request fails closed with the gateway's own error shape.
    assert.equal(h2Status, 500);

    const h1 = await new Promise<{ alpn: string | false | null; status: number; body: string }>((resolve, reject) => {
      const req = httpsRequest({ host: '127.0.0.1', port: tlsPort, path: '/v1/models', agent: new HttpsAgent({ ca, ALPNProtocols: ['http/1.1'] }) }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ alpn: (res.socket as import('node:tls').TLSSocket).alpnProtocol, status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(h1.alpn, 'http/1.1');
    assert.equal(h1.status, 500);
    assert.equal((JSON.parse(h1.body) as { error: { code: string } }).error.code, 'internal_error');

    const plainPort = await run('plain', envoyOf(await template()));
    const h2c = http2Connect(`http://127.0.0.1:${plainPort}`);
    const h2cStatus = await new Promise<number>((resolve, reject) => {
      const req = h2c.request({ ':path': '/v1/models' });
      req.on('response', (h) => resolve(Number(h[':status'])));
      req.on('error', reject);
      req.end();
    });
    h2c.close();
    assert.equal(h2cStatus, 500, 'h2c (prior knowledge) is accepted on the plain listener');
  });
});
