/**
 * `npm run bench -- --config-scale [--keys=100000] [--providers=1000] [--seconds=20]
 * [--scale-source=file|kubernetes]`: config at scale (issue 15). N ApiKeys (keyHash,
 * `models: ["gpt-4o*"]`, RPM and monthly limits) and P ModelProviders with 5 models each, either in
 * two YAML files (file mode) or as objects in a real kube-apiserver (the integration tests' control
 * plane, the chart installed with helm, objects created with `kubectl apply --server-side` in
 * batches of 1,000). Tollgate starts with an inspector port (to read its heap and event-loop delay)
 * behind a real Envoy and a fake provider; each target of the issue is printed with its number:
 *   - cold start: process start -> /readyz answers 200 (in Kubernetes mode: every object listed);
 *   - one changed key takes effect: file renamed into place / API server acknowledged the patch ->
 *     first request with that key refused;
 *   - event-loop delay (monitorEventLoopDelay inside Tollgate) while a key changes every second;
 *   - p99 of a steady 200 req/s with and without one key change per second;
 *   - heap per key: live heap after a full GC with N keys minus the same with no keys, over N.
 */
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../src/dev/envoy-config.js';
import { FakeProvider } from '../src/dev/fake-provider.js';
import { freePort, startEnvoy, ManagedProcess } from '../src/dev/local-stack.js';
import { evaluateIn, liveMemory } from './inspect.js';
import type { LoadResult, RateSpec } from './loadgen.js';
import { installChart, startControlPlane } from '../test/harness/control-plane.js';
import { cpuMs } from './proc.js';
import { round, summarize } from './stats.js';

export interface ConfigScaleOptions {
  readonly source: 'file' | 'kubernetes';
  readonly keys: number;
  readonly providers: number;
  /** Length of each load phase. */
  readonly seconds: number;
  readonly rate: number;
  readonly runLoadgen: (spec: RateSpec) => Promise<LoadResult>;
  readonly log: (msg: string) => void;
}

const LOAD_KEY = 'sk-scale-load';
const clearKey = (i: number): string => `sk-scale-${i}`;
const hashOf = (clear: string): string => 'sha256:' + createHash('sha256').update(clear).digest('hex');

function providersYaml(providers: number, fakePort: number): string {
  const parts = [
    `apiVersion: v1\nkind: Secret\nmetadata: { name: upstream }\nstringData: { token: t }\n`,
    `apiVersion: tollgate.dev/v1alpha1\nkind: ModelProvider\nmetadata: { name: bench-fake }\nspec:\n  type: openai\n  endpoint: http://127.0.0.1:${fakePort}/v1\n  credentialSecretRef: { name: upstream, key: token }\n  models:\n    - name: gpt-4o-mini\n`,
  ];
  for (let p = 0; p < providers; p++) {
    const models = [0, 1, 2, 3, 4].map((m) => `    - name: scale-model-${p * 5 + m}\n`).join('');
    parts.push(
      `apiVersion: tollgate.dev/v1alpha1\nkind: ModelProvider\nmetadata: { name: scale-${p} }\nspec:\n  type: openai\n  endpoint: http://127.0.0.1:${fakePort}/v1\n  credentialSecretRef: { name: upstream, key: token }\n  models:\n${models}`,
    );
  }
  return parts.join('---\n');
}

/** One key document; `disabled` inserts one line (the edit the change phase makes). */
function keyDoc(i: number, disabled: boolean): string {
  return `apiVersion: tollgate.dev/v1alpha1\nkind: ApiKey\nmetadata:\n  name: key-${i}\n  namespace: default\nspec:\n  keyHash: ${hashOf(clearKey(i))}\n${disabled ? '  disabled: true\n' : ''}  models: ["gpt-4o*"]\n  limits:\n    requestsPerMinute: 600\n    tokensPerMonth: 1000000\n`;
}

function keysYaml(keys: number, disabled: ReadonlySet<number>): string {
  const docs = [
    `apiVersion: tollgate.dev/v1alpha1\nkind: ApiKey\nmetadata: { name: load, namespace: default }\nspec:\n  keyHash: ${hashOf(LOAD_KEY)}\n  models: ["gpt-4o*"]\n`,
  ];
  for (let i = 0; i < keys; i++) docs.push(keyDoc(i, disabled.has(i)));
  return docs.join('---\n');
}

async function writeAtomically(path: string, text: string): Promise<void> {
  await writeFile(`${path}.tmp`, text);
  await rename(`${path}.tmp`, path);
}

function chatStatus(port: number, key: string): Promise<number> {
  const body = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path: '/v1/chat/completions', method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

interface Gateway {
  readonly process: ManagedProcess;
  readonly socket: string;
  readonly adminPort: number;
  readonly inspectPort: number;
  readonly coldStartMs: number;
  readonly coldStartCpuMs: number;
}

async function startTollgate(workDir: string, sourceArgs: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<Gateway> {
  await mkdir(workDir, { recursive: true });
  const socket = join(workDir, 'extproc.sock');
  const adminPort = await freePort();
  const inspectPort = await freePort();
  const fd = openSync(join(workDir, 'tollgate.log'), 'a');
  const started = performance.now();
  const child = spawn(
    process.execPath,
    [`--inspect=127.0.0.1:${inspectPort}`, join(REPO_ROOT, 'dist/src/main.js'), ...sourceArgs, '--extproc-address', `unix:${socket}`, '--admin-host', '127.0.0.1', '--admin-port', String(adminPort)],
    { stdio: ['ignore', fd, fd], env: { ...process.env, ...env } },
  );
  closeSync(fd);
  const proc = new ManagedProcess('tollgate', child, join(workDir, 'tollgate.log'));
  const deadline = Date.now() + 300_000;
  for (;;) {
    if (!proc.running) throw new Error(`tollgate exited at start; see ${proc.logFile}`);
    if (Date.now() > deadline) {
      await proc.stop('SIGKILL');
      throw new Error('tollgate not ready after 300 s');
    }
    const ok = await fetch(`http://127.0.0.1:${adminPort}/readyz`).then((r) => r.ok, () => false);
    if (ok) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const coldStartMs = performance.now() - started;
  const coldStartCpuMs = await cpuMs(child.pid as number);
  return { process: proc, socket, adminPort, inspectPort, coldStartMs, coldStartCpuMs };
}

const ELD_START = `(() => { const { monitorEventLoopDelay } = process.getBuiltinModule('node:perf_hooks');
  globalThis.__tgEld?.disable(); globalThis.__tgEld = monitorEventLoopDelay({ resolution: 1 }); globalThis.__tgEld.enable(); return true; })()`;
const ELD_READ = `JSON.stringify({ p50: __tgEld.percentile(50) / 1e6, p99: __tgEld.percentile(99) / 1e6, max: __tgEld.max / 1e6 })`;

interface Eld {
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

interface Setup {
  startEmpty(): Promise<Gateway>;
  addKeys(): Promise<void>;
  startFull(): Promise<Gateway>;
  /** Disables key `i`; resolves when the change is visible (file renamed, API write acknowledged). */
  disable(i: number): Promise<void>;
  /** File mode: rewrites every key (new limits) and disables `last`: a full reload. */
  rewriteAll?: (last: number) => Promise<void>;
  stop(): Promise<void>;
}

async function fileSetup(workDir: string, o: ConfigScaleOptions, fakePort: number): Promise<Setup> {
  const emptyDir = join(workDir, 'config-empty');
  const configDir = join(workDir, 'config');
  for (const dir of [emptyDir, configDir]) {
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'providers.yaml'), providersYaml(o.providers, fakePort));
  }
  await writeFile(join(emptyDir, 'keys.yaml'), keysYaml(0, new Set()));
  const keysFile = join(configDir, 'keys.yaml');
  let text = '';
  return {
    startEmpty: () => startTollgate(join(workDir, 'gw-empty'), ['--config-dir', emptyDir]),
    addKeys: async () => {
      text = keysYaml(o.keys, new Set());
      await writeFile(keysFile, text);
    },
    startFull: () => startTollgate(join(workDir, 'gw'), ['--config-dir', configDir]),
    rewriteAll: async (last) => {
      text = text.replaceAll('requestsPerMinute: 600\n', 'requestsPerMinute: 601\n');
      const before = keyDoc(last, false).replace('600', '601');
      text = text.replace(before, keyDoc(last, true).replace('600', '601'));
      await writeAtomically(keysFile, text);
    },
    disable: async (i) => {
      // One document changes: the edit a user makes.
      const before = keyDoc(i, false);
      const at = text.indexOf(before);
      if (at < 0) throw new Error(`key-${i} not found in the keys file`);
      text = text.slice(0, at) + keyDoc(i, true) + text.slice(at + before.length);
      await writeAtomically(keysFile, text);
    },
    stop: async () => undefined,
  };
}

const NS = 'scale';
const RELEASE = 'tg';

async function kubernetesSetup(workDir: string, o: ConfigScaleOptions, fakePort: number, log: (msg: string) => void): Promise<Setup> {
  const cp = await startControlPlane();
  try {
    await installChart(cp, { namespace: NS, release: RELEASE });
    const fullname = `${RELEASE}-tollgate`;
    const token = (await cp.kubectl(['create', 'token', fullname, '-n', NS, '--duration=7200s'])).stdout.trim();
    const kubeconfig = await cp.kubeconfigForToken(token, 'sa-scale');
    const gatewayFile = join(workDir, 'gateway.yaml');
    await writeFile(gatewayFile, (await cp.kubectl(['get', 'configmap', `${fullname}-gateway`, '-n', NS, '-o', 'jsonpath={.data.gateway\\.yaml}'])).stdout);
    const apply = async (docs: string[]): Promise<void> => {
      for (let i = 0; i < docs.length; i += 1000) {
        const input = docs.slice(i, i + 1000).join('---\n').replaceAll('namespace: default', `namespace: ${NS}`);
        await cp.kubectl(['apply', '--server-side', '-n', NS, '-f', '-'], { input });
      }
    };
    const started = performance.now();
    const providerDocs = providersYaml(o.providers, fakePort)
      .split('---\n')
      .map((d) => (d.startsWith('apiVersion: v1\nkind: Secret') ? d.replace('metadata: { name: upstream }', 'metadata: { name: upstream, labels: { tollgate.dev/secret: "true" } }') : d));
    await apply(providerDocs);
    await apply([keysYaml(0, new Set())]);
    log(`kubernetes: ${o.providers} providers created in ${round((performance.now() - started) / 1000)} s`);
    const args = [
      '--source=kubernetes',
      `--namespace=${NS}`,
      `--gateway-config=${gatewayFile}`,
      '--secret-selector=tollgate.dev/secret=true',
      `--lease-name=${fullname}-status`,
    ];
    const { KubeConfig, CustomObjectsApi, PatchStrategy, setHeaderOptions } = await import('@kubernetes/client-node');
    const kc = new KubeConfig();
    kc.loadFromFile(cp.kubeconfig);
    const custom = kc.makeApiClient(CustomObjectsApi);
    return {
      startEmpty: () => startTollgate(join(workDir, 'gw-empty'), args, { KUBECONFIG: kubeconfig }),
      addKeys: async () => {
        const t = performance.now();
        const docs = keysYaml(o.keys, new Set()).split('---\n').slice(1);
        await apply(docs);
        log(`kubernetes: ${o.keys} keys applied in ${round((performance.now() - t) / 1000)} s`);
      },
      startFull: () => startTollgate(join(workDir, 'gw'), args, { KUBECONFIG: kubeconfig }),
      disable: async (i) => {
        await custom.patchNamespacedCustomObject(
          { group: 'tollgate.dev', version: 'v1alpha1', namespace: NS, plural: 'apikeys', name: `key-${i}`, body: { spec: { disabled: true } } },
          setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
        );
      },
      stop: () => cp.stop(),
    };
  } catch (err) {
    await cp.stop();
    throw err;
  }
}

export async function runConfigScale(o: ConfigScaleOptions): Promise<void> {
  const workDir = await mkdtemp(join(tmpdir(), 'tollgate-config-scale-'));
  const fake = new FakeProvider({ record: false, chunks: 1, chunkIntervalMs: 0 }, 'scale');
  await fake.start(0);
  const stops: (() => Promise<void>)[] = [() => fake.stop()];
  let failed = false;
  try {
    const setup = o.source === 'file' ? await fileSetup(workDir, o, fake.port) : await kubernetesSetup(workDir, o, fake.port, o.log);
    stops.push(() => setup.stop());
    // Baseline: the same providers, no keys but the load key.
    const empty = await setup.startEmpty();
    const emptyMem = await liveMemory(empty.inspectPort);
    await empty.process.stop();
    o.log(`empty gateway (${o.providers} providers): ready in ${round(empty.coldStartMs / 1000)} s, heap ${round(emptyMem.heapUsed / 2 ** 20)} MiB`);

    await setup.addKeys();
    const gw = await setup.startFull();
    stops.push(() => gw.process.stop());
    const mem = await liveMemory(gw.inspectPort);
    const heapPerKey = (mem.heapUsed - emptyMem.heapUsed) / Math.max(1, o.keys);
    o.log(`${o.keys} keys: ready in ${round(gw.coldStartMs / 1000)} s (${round(gw.coldStartCpuMs / 1000)} s CPU), heap ${round(mem.heapUsed / 2 ** 20)} MiB, RSS ${round(mem.rss / 2 ** 20)} MiB`);

    const envoy = await startEnvoy({ workDir: join(workDir, 'envoy'), extprocSocket: gw.socket });
    stops.push(() => envoy.process.stop());
    const status = await chatStatus(envoy.port, LOAD_KEY);
    if (status !== 200) throw new Error(`load key answered ${status}, expected 200; see ${gw.process.logFile}`);
    const spec: RateSpec = {
      mode: 'rate',
      url: `http://127.0.0.1:${envoy.port}/v1/chat/completions`,
      headers: { authorization: `Bearer ${LOAD_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
      stream: false,
      rate: o.rate,
      durationS: o.seconds,
      warmupS: 2,
    } as RateSpec;

    await evaluateIn(gw.inspectPort, ELD_START);
    const steady = await o.runLoadgen(spec);
    const steadyEld = JSON.parse(String(await evaluateIn(gw.inspectPort, ELD_READ))) as Eld;
    o.log(`steady ${o.rate} req/s: p99 ${round(steady.latencyMs.p99)} ms, ok ${steady.ok}/${steady.measured}`);

    // The same load while one key is disabled per second (the file rewritten each time).
    await evaluateIn(gw.inspectPort, ELD_START);
    const load = o.runLoadgen(spec);
    const effectMs: number[] = [];
    const disabled = new Set<number>();
    const until = Date.now() + (o.seconds + 1) * 1000;
    for (let n = 0; Date.now() < until; n++) {
      const tick = Date.now();
      const victim = (n * 7919) % Math.max(1, o.keys);
      if (disabled.has(victim)) continue;
      disabled.add(victim);
      // The key must be served before the change, or "refused" below would prove nothing.
      const before = await chatStatus(envoy.port, clearKey(victim));
      if (before !== 200) throw new Error(`key-${victim} answered ${before} before its change; was it loaded? see ${gw.process.logFile}`);
      await setup.disable(victim);
      const written = performance.now();
      for (;;) {
        const s = await chatStatus(envoy.port, clearKey(victim));
        if (s !== 200) break;
        if (performance.now() - written > 30_000) throw new Error(`key-${victim} still served 30 s after the change`);
        await new Promise((r) => setTimeout(r, 10));
      }
      effectMs.push(performance.now() - written);
      const wait = 1000 - (Date.now() - tick);
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
    const changing = await load;
    const changeEld = JSON.parse(String(await evaluateIn(gw.inspectPort, ELD_READ))) as Eld;
    const effect = summarize(effectMs);
    const memAfter = await liveMemory(gw.inspectPort);

    // File mode: every key rewritten at once (a regenerated file) under the same load.
    let full: { ms: number; eld: Eld; load: LoadResult } | undefined;
    if (setup.rewriteAll) {
      const last = o.keys - 1;
      const served = await chatStatus(envoy.port, clearKey(last));
      if (served !== 200) throw new Error(`key-${last} answered ${served} before the full reload`);
      await evaluateIn(gw.inspectPort, ELD_START);
      const fullLoad = o.runLoadgen(spec);
      await new Promise((r) => setTimeout(r, 3000));
      await setup.rewriteAll(last);
      const written = performance.now();
      while ((await chatStatus(envoy.port, clearKey(last))) === 200) {
        if (performance.now() - written > 120_000) throw new Error('full reload not applied after 120 s');
        await new Promise((r) => setTimeout(r, 50));
      }
      const ms = performance.now() - written;
      const load = await fullLoad;
      full = { ms, eld: JSON.parse(String(await evaluateIn(gw.inspectPort, ELD_READ))) as Eld, load };
    }

    const rows: [string, string, string, boolean][] = [
      ['cold start to ready', '< 10 s', `${round(gw.coldStartMs / 1000)} s (${round(gw.coldStartCpuMs / 1000)} s CPU)`, gw.coldStartMs < 10_000],
      ['one changed key takes effect (p99)', '< 1 s', `${round(effect.p99)} ms (p50 ${round(effect.p50)}, max ${round(effect.max)}, ${effect.count} changes)`, effect.p99 < 1000],
      ['event-loop delay p99 during changes', '< 20 ms', `${round(changeEld.p99)} ms (max ${round(changeEld.max)}; steady p99 ${round(steadyEld.p99)})`, changeEld.p99 < 20],
      [
        `p99 at ${o.rate} req/s with 1 change/s vs without`,
        '<= 2x',
        `${round(changing.latencyMs.p99)} vs ${round(steady.latencyMs.p99)} ms (${round(changing.latencyMs.p99 / steady.latencyMs.p99)}x); failed ${changing.failed}, ${JSON.stringify(changing.outcomes)}`,
        changing.latencyMs.p99 <= 2 * steady.latencyMs.p99,
      ],
      ...(full
        ? ([
            [
              'full reload of every key under load (no request delayed)',
              'no 504s, loop p99 < 20 ms',
              `applied in ${round(full.ms / 1000)} s; loop delay p99 ${round(full.eld.p99)} ms (max ${round(full.eld.max)}); request p99 ${round(full.load.latencyMs.p99)} ms, failed ${full.load.failed}, ${JSON.stringify(full.load.outcomes)}`,
              full.load.failed === 0 && full.eld.p99 < 20,
            ],
          ] as [string, string, string, boolean][])
        : []),
      ['heap per key', '<= 1024 B', `${Math.round(heapPerKey)} B (heap ${round(mem.heapUsed / 2 ** 20)} MiB, after changes ${round(memAfter.heapUsed / 2 ** 20)} MiB, RSS ${round(memAfter.rss / 2 ** 20)} MiB)`, heapPerKey <= 1024],
    ];
    process.stdout.write(`\nConfig at scale, ${o.source} mode: ${o.keys} ApiKeys, ${o.providers} ModelProviders (${o.providers * 5} models)\n`);
    process.stdout.write('| target | goal | measured | met |\n|---|---|---|---|\n');
    for (const [what, goal, measured, met] of rows) process.stdout.write(`| ${what} | ${goal} | ${measured} | ${met ? 'yes' : 'no'} |\n`);
  } catch (err) {
    o.log(`failed; logs kept in ${workDir}`);
    failed = true;
    throw err;
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    if (!failed) await rm(workDir, { recursive: true, force: true });
  }
}
