/**
 * `npm run bench`: in one run on this machine, the same requests against four targets — direct to
 * the fake provider (the floor), bare Envoy (no ext_proc), Tollgate, and Tollgate with limits and
 * usage accounting on a real Redis — for each scenario in bench/scenarios.ts. Writes JSON to
 * bench/results/ and the tables to docs/benchmarks.md.
 *
 * Flags:
 *   --quick                  short runs (about 5 minutes instead of about 11)
 *   --smoke                  CI smoke: a second or two per target, chat and stream100 (and a Responses
 *                            stream through Tollgate) only, no docs;
 *                            exits non-zero when any measurement failed or a target is unavailable
 *   --profile                CPU profile of each Tollgate process; top frames in the report
 *   --heap-profile           sampling heap profile of each Tollgate process (raw files only)
 *   --scenarios=a,b          chat, stream100, stream100-anthropic, stream100-bedrock, messages-stream100,
 *                            messages-anthropic, messages-bedrock, responses, responses-stream100, responses-anthropic,
 *                            responses-stream100-anthropic, embeddings, prompt1m, slow1000,
 *                            slow1000-responses-anthropic, slow1000-bedrock, streams500
 *   --targets=a,b            direct, envoy, envoy-echo, tollgate, tollgate-limits, tollgate-guardrails
 *   --rounds=1               request scenarios run every target this many times, alternating
 *                            (A, B, A, B...), so a shared machine's drift hits both; the report gives
 *                            each round and the median (e.g. the guardrail cost, docs/safety.md)
 *   --rate=500               fixed rate of the latency runs
 *   --low-rate=100           a second, light fixed rate (0 = off)
 *   --connections=64         wrk connections for max throughput
 *   --gateway-node-options=  NODE_OPTIONS of the Tollgate and echo ext_proc processes (A/B runs)
 *   --no-docs                do not touch docs/benchmarks.md
 *   --keep                   keep the work directory with every process's log
 *   --config-scale           config at scale instead (bench/config-scale.ts): cold start, change
 *                            latency, event-loop delay, p99 under changes and heap per key, with
 *                            --keys=100000 --providers=1000 --seconds=20 --scale-rate=200
 *                            --scale-source=file|kubernetes (a real kube-apiserver)
 *   --envoy-stats=REGEX      print Envoy's non-zero stats matching REGEX every second while load
 *                            runs (e.g. 'tollgate_extproc.*pending_send' for HTTP/2 flow control)
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { cpus, totalmem, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { REPO_ROOT } from '../src/dev/envoy-config.js';
import type { FakesBehaviour } from './fake-server.js';
import { freePort, startEnvoy, startGateway, waitFor, type ManagedProcess } from '../src/dev/local-stack.js';
import { runConfigScale } from './config-scale.js';
import { bareEnvoyConfig } from './envoy-bare.js';
import { BENCH_KEY, PROBE_KEY, basicFiles, guardrailFiles, limitsFiles, writeConfigDir, type TranslatedPorts } from './gateway-config.js';
import type { LoadResult, LoadSpec } from './loadgen.js';
import { liveMemory, type LiveMemory } from './inspect.js';
import { cpuDelta, cpuMs, cpuSnapshot, loadAverage, machineTicks, rssBytes, waitSnapshot } from './proc.js';
import { summarizeProfile, type ProfileSummary } from './profile.js';
import { renderMarkdown, writeDocs } from './report.js';
import { FULL, PROBE_BODY, QUICK, SMOKE, SMOKE_SCENARIOS, TARGETS, scenarios, type RequestScenario, type Scenario, type ScenarioName, type StreamsScenario, type TargetName } from './scenarios.js';
import { ensureWrk, runWrk, type WrkResult } from './wrk.js';

const exec = promisify(execFile);

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    smoke: { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
    'heap-profile': { type: 'boolean', default: false },
    'gateway-node-options': { type: 'string', default: '' },
    'no-docs': { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    'envoy-stats': { type: 'string' },
    scenarios: { type: 'string' },
    targets: { type: 'string' },
    rate: { type: 'string', default: '500' },
    'low-rate': { type: 'string', default: '100' },
    connections: { type: 'string', default: '64' },
    rounds: { type: 'string', default: '1' },
    'config-scale': { type: 'boolean', default: false },
    keys: { type: 'string', default: '100000' },
    providers: { type: 'string', default: '1000' },
    seconds: { type: 'string', default: '20' },
    'scale-rate': { type: 'string', default: '200' },
    'scale-source': { type: 'string', default: 'file' },
  },
  strict: true,
});

const durations = flags.smoke ? SMOKE : flags.quick ? QUICK : FULL;
/** A smoke run never rewrites docs/benchmarks.md: its numbers are too short to publish. */
const writeDocsToo = !flags['no-docs'] && !flags.smoke;
const RATE = Number(flags.rate);
/** A second, light fixed rate: added latency when nothing queues (0 turns it off). */
const LOW_RATE = Number(flags['low-rate']);
const CONNECTIONS = Number(flags.connections);
/** Alternating rounds of each request scenario over all targets (A/B on a noisy machine). */
const ROUNDS = Math.max(1, Math.floor(Number(flags.rounds)) || 1);

function log(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

/** A target as the load generators see it, plus the pids whose CPU and memory we read. */
interface Target {
  readonly name: TargetName;
  readonly baseUrl: string;
  /** Tollgate's process id (ext_proc), when the target has one. */
  readonly extprocPid?: number;
  /** Envoy's admin URL (ext_proc stream and message counters). */
  readonly envoyAdmin?: string;
  /** Tollgate's inspector port (for live memory after a forced GC). */
  readonly inspectPort?: number;
  readonly envoyPid?: number;
}

export interface RequestRow {
  readonly target: TargetName;
  /** 1-based round when --rounds > 1 (targets alternate within each round). */
  readonly round?: number;
  /** Requests per second of the fixed-rate run. */
  readonly fixedRate: number;
  readonly max: WrkResult;
  readonly maxCpuMs: Record<string, number>;
  /** Time each process waited for a CPU during the max run (ms). */
  readonly maxWaitMs: Record<string, number>;
  readonly rate: LoadResult;
  readonly rateCpuMs: Record<string, number>;
  /** The same at the light rate (--low-rate), when it is below the fixed rate. */
  readonly low?: { readonly rate: number; readonly result: LoadResult };
  /** ext_proc side streams and messages (Envoy -> Tollgate) per client request, from Envoy's counters. */
  readonly extprocPerRequest?: { readonly streams: number; readonly messages: number };
  /** Tollgate CPU per request (µs) at max throughput and at the fixed rate. */
  readonly extprocCpuUsPerReqMax?: number;
  readonly extprocCpuUsPerReqRate?: number;
}

export interface StreamsRow {
  readonly target: TargetName;
  readonly load: LoadResult;
  readonly cpuMs: Record<string, number>;
  /** Time each process waited for a CPU during the run (ms). */
  readonly waitMs: Record<string, number>;
  /** Whether all streams were open (first byte received) when memory was sampled. */
  readonly allOpenAtSample: boolean;
  readonly extprocRssBefore?: number;
  readonly extprocRssOpen?: number;
  readonly extprocBytesPerStream?: number;
  /** Live memory (V8 heap + external, after a full GC) per open stream, from a second round. */
  readonly extprocLivePerStream?: number;
  readonly envoyBytesPerStream?: number;
  /** Tollgate CPU cores used over the run (CPU seconds / wall seconds). */
  readonly extprocCores?: number;
}

export interface ScenarioResult {
  readonly scenario: Scenario;
  readonly requests?: RequestRow[];
  readonly streams?: StreamsRow[];
}

export interface BenchReport {
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly command: string;
  readonly quick: boolean;
  readonly rate: number;
  readonly connections: number;
  /** Rounds of each request scenario (--rounds). */
  readonly rounds?: number;
  readonly machine: {
    readonly cores: number;
    readonly cpuModel: string;
    readonly memoryGiB: number;
    readonly node: string;
    readonly envoy: string;
    readonly loadBefore: string;
    readonly loadAfter: string;
    readonly busiestBefore: string[];
    /** Share of all cores busy over the whole run (the bench's own processes included). */
    readonly busyDuringRun: number;
  };
  readonly unavailable: Partial<Record<TargetName, string>>;
  readonly results: ScenarioResult[];
  /** Measurements that could not be taken, with the reason. */
  readonly failures: string[];
  readonly profiles: Partial<Record<TargetName, ProfileSummary>>;
}

/** The fake provider in its own process (see fake-server.ts). */
class FakeProcess {
  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
    /** The fake Anthropic Messages API and the fake Bedrock runtime (translated scenarios). */
    readonly translated: TranslatedPorts,
  ) {}

  get pid(): number {
    return this.child.pid as number;
  }

  static async start(logFile: string): Promise<FakeProcess> {
    const { openSync, closeSync } = await import('node:fs');
    const fd = openSync(logFile, 'a');
    const child = spawn(process.execPath, [join(REPO_ROOT, 'dist/bench/fake-server.js'), '{}'], { stdio: ['ignore', 'pipe', fd, 'ipc'] });
    closeSync(fd);
    const ports = await new Promise<{ port: number; anthropicPort: number; bedrockPort: number }>((resolve, reject) => {
      let text = '';
      child.stdout?.on('data', (c: Buffer) => {
        text += c.toString();
        const line = text.split('\n')[0];
        if (text.includes('\n') && line) resolve(JSON.parse(line) as { port: number; anthropicPort: number; bedrockPort: number });
      });
      child.once('exit', (code) => reject(new Error(`fake provider exited (${String(code)}); see ${logFile}`)));
    });
    return new FakeProcess(child, ports.port, { anthropic: ports.anthropicPort, bedrock: ports.bedrockPort });
  }

  configure(behaviour: FakesBehaviour): Promise<void> {
    return new Promise((resolve) => {
      this.child.once('message', () => resolve());
      this.child.send(behaviour);
    });
  }

  stop(): void {
    if (this.child.connected) this.child.disconnect();
  }
}

/** Runs the load generator process with `spec`; `onOpen` fires when all streams are open. */
function runLoadgen(spec: LoadSpec, onOpen?: () => void): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(REPO_ROOT, 'dist/bench/loadgen.js')], { stdio: ['pipe', 'pipe', 'pipe'] });
    child.stdin.end(JSON.stringify(spec));
    let out = '';
    let err = '';
    let result: LoadResult | undefined;
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      let nl: number;
      while ((nl = out.indexOf('\n')) >= 0) {
        const line = out.slice(0, nl);
        out = out.slice(nl + 1);
        const msg = JSON.parse(line) as { event: string };
        if (msg.event === 'open') onOpen?.();
        else if (msg.event === 'result') result = msg as LoadResult;
      }
    });
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('exit', (code) => (result ? resolve(result) : reject(new Error(`load generator failed (${String(code)}): ${err}`))));
  });
}

async function machineInfo(): Promise<Omit<BenchReport['machine'], 'loadAfter' | 'busyDuringRun'>> {
  const { stdout: envoyVersion } = await exec('bash', ['-c', `"$(bash ${join(REPO_ROOT, 'envoy/install-envoy.sh')} | tail -1)" --version`]).catch(() => ({ stdout: 'unknown' }));
  return {
    cores: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    envoy: /version: (\S+)/.exec(envoyVersion)?.[1] ?? envoyVersion.trim(),
    loadBefore: await loadAverage(),
    busiestBefore: await busiest(),
  };
}

/**
 * The processes using the most CPU over one second now (what else runs on this shared machine), as
 * `%CPU program [script]`: names only, so no path or argument reaches the docs.
 */
async function busiest(): Promise<string[]> {
  const sample = async (): Promise<Map<number, number>> => {
    const out = new Map<number, number>();
    const pids = (await readdir('/proc')).filter((d) => /^\d+$/.test(d)).map(Number);
    await Promise.all(pids.map(async (pid) => out.set(pid, await cpuMs(pid).catch(() => 0))));
    return out;
  };
  const first = await sample();
  await new Promise((r) => setTimeout(r, 1000));
  const second = await sample();
  const top = [...second.entries()]
    .map(([pid, ms]) => ({ pid, ms: ms - (first.get(pid) ?? ms) }))
    .filter((p) => p.ms > 0 && p.pid !== process.pid)
    .sort((a, b) => b.ms - a.ms)
    .slice(0, 8);
  const lines: string[] = [];
  for (const { pid, ms } of top) {
    // Only the program's name (and a Node script's file name): arguments can hold anything.
    const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0');
    const base = (a: string | undefined): string => (a ?? '').split('/').pop() ?? '';
    const script = argv.slice(1).find((a) => /\.[cm]?js$/.test(a));
    const name = base(argv[0]) || `pid ${pid}`;
    lines.push(`${Math.round(ms / 10)}% ${name}${script ? ` ${base(script)}` : ''}`);
  }
  return lines;
}

function requestHeaders(target: Target): Record<string, string> {
  const h: Record<string, string> = { 'content-type': 'application/json', authorization: `Bearer ${BENCH_KEY}` };
  if (target.name === 'direct') h['authorization'] = 'Bearer bench-upstream-token';
  return h;
}

async function post(url: string, key: string, body: string): Promise<number> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body });
  await res.arrayBuffer();
  return res.status;
}

/**
 * Sends a few requests so every hop has warm connections and JIT-compiled code. Tolerates a short
 * recovery after an overload run (a provider in cool-down answers 503 for a while).
 */
async function warm(target: Target, s: Scenario): Promise<void> {
  const key = requestHeaders(target)['authorization']?.slice(7) ?? '';
  let ok = 0;
  let last = 0;
  const deadline = Date.now() + 60_000;
  while (ok < 20) {
    last = await post(target.baseUrl + s.path, key, s.body).catch(() => 0);
    if (last === 200) ok++;
    else if (Date.now() > deadline) throw new Error(`warm-up requests keep failing (last status ${last})`);
    else await new Promise((r) => setTimeout(r, 250));
  }
}

function pidsOf(target: Target, fake: FakeProcess): Record<string, number> {
  const pids: Record<string, number> = { fake: fake.pid };
  if (target.envoyPid) pids['envoy'] = target.envoyPid;
  if (target.extprocPid) pids['extproc'] = target.extprocPid;
  return pids;
}

async function runRequestScenario(s: RequestScenario, target: Target, fake: FakeProcess, wrk: string, workDir: string): Promise<RequestRow> {
  const url = target.baseUrl + s.path;
  const headers = requestHeaders(target);
  const pids = pidsOf(target, fake);
  await warm(target, s);
  const connections = s.connections ?? CONNECTIONS;
  if (durations.wrkWarmupS > 0) await runWrk(wrk, workDir, `${s.name}-${target.name}-warm`, { url, headers, body: s.body, connections, durationS: durations.wrkWarmupS });
  const countersBefore = target.envoyAdmin ? await extprocCounters(target.envoyAdmin) : undefined;
  let before = await cpuSnapshot(pids);
  const waitBefore = await waitSnapshot(pids);
  const stopStats = sampleEnvoyStats(target, `${s.name} max`);
  const max = await runWrk(wrk, workDir, `${s.name}-${target.name}`, { url, headers, body: s.body, connections, durationS: durations.wrkS });
  stopStats();
  const maxCpuMs = cpuDelta(before, await cpuSnapshot(pids));
  const maxWaitMs = cpuDelta(waitBefore, await waitSnapshot(pids));
  maxCpuMs['generator'] = max.cpuMs;
  const countersAfter = target.envoyAdmin ? await extprocCounters(target.envoyAdmin) : undefined;
  const extprocPerRequest =
    countersBefore && countersAfter && max.requests > 0
      ? { streams: (countersAfter.streams - countersBefore.streams) / max.requests, messages: (countersAfter.messages - countersBefore.messages) / max.requests }
      : undefined;
  before = await cpuSnapshot(pids);
  const fixedRate = Math.min(RATE, s.rate ?? RATE);
  const rate = await runLoadgen({ mode: 'rate', url, headers, body: s.body, stream: s.stream, ...(s.streamEnd ? { streamEnd: s.streamEnd } : {}), rate: fixedRate, durationS: durations.rateS, warmupS: durations.rateWarmupS });
  const rateCpuMs = cpuDelta(before, await cpuSnapshot(pids));
  rateCpuMs['generator'] = rate.cpuMs;
  const low =
    LOW_RATE > 0 && LOW_RATE < fixedRate
      ? { rate: LOW_RATE, result: await runLoadgen({ mode: 'rate', url, headers, body: s.body, stream: s.stream, ...(s.streamEnd ? { streamEnd: s.streamEnd } : {}), rate: LOW_RATE, durationS: durations.rateS, warmupS: durations.rateWarmupS }) }
      : undefined;
  const row: RequestRow = { target: target.name, fixedRate, max, maxCpuMs, maxWaitMs, rate, rateCpuMs, ...(low ? { low } : {}), ...(extprocPerRequest ? { extprocPerRequest } : {}) };
  if (target.extprocPid) {
    return {
      ...row,
      extprocCpuUsPerReqMax: ((maxCpuMs['extproc'] ?? 0) * 1000) / Math.max(1, max.requests),
      extprocCpuUsPerReqRate: ((rateCpuMs['extproc'] ?? 0) * 1000) / Math.max(1, rate.sent),
    };
  }
  return row;
}

async function runStreamsScenario(s: StreamsScenario, target: Target, fake: FakeProcess): Promise<StreamsRow> {
  const pids = pidsOf(target, fake);
  const spec: LoadSpec = { mode: 'streams', url: target.baseUrl + s.path, headers: requestHeaders(target), body: s.body, stream: true, ...(s.streamEnd ? { streamEnd: s.streamEnd } : {}), concurrency: s.concurrency, rampMs: s.rampMs, durationS: s.durationS };
  // Memory per open stream only means something when one round of streams is open at once.
  const measureMemory = s.durationS === 0;
  const extprocRssBefore = target.extprocPid && measureMemory ? await rssBytes(target.extprocPid) : undefined;
  const envoyRssBefore = target.envoyPid && measureMemory ? await rssBytes(target.envoyPid) : undefined;
  const before = await cpuSnapshot(pids);
  const waitBefore = await waitSnapshot(pids);
  let sampled: Promise<{ extproc?: number; envoy?: number; allOpen: boolean }> | undefined;
  let finished = false;
  const stopStats = sampleEnvoyStats(target, s.name);
  const load = await runLoadgen(spec, () => {
    // All streams have their first byte: let them settle, then read memory while they are open.
    const allOpen = !finished;
    sampled = new Promise((r) => setTimeout(r, 500)).then(async () => ({
      allOpen: allOpen && !finished,
      ...(target.extprocPid ? { extproc: await rssBytes(target.extprocPid) } : {}),
      ...(target.envoyPid ? { envoy: await rssBytes(target.envoyPid) } : {}),
    }));
  });
  finished = true;
  stopStats();
  const cpuMs = cpuDelta(before, await cpuSnapshot(pids));
  const waitMs = cpuDelta(waitBefore, await waitSnapshot(pids));
  cpuMs['generator'] = load.cpuMs;
  const mem = (await sampled) ?? { allOpen: false };
  const perStream = (open: number | undefined, idle: number | undefined): number | undefined =>
    open !== undefined && idle !== undefined ? (open - idle) / s.concurrency : undefined;
  const extprocBytesPerStream = perStream(mem.extproc, extprocRssBefore);
  const envoyBytesPerStream = perStream(mem.envoy, envoyRssBefore);
  const extprocLivePerStream = measureMemory && target.inspectPort ? await livePerStream(spec, target.inspectPort) : undefined;
  return {
    target: target.name,
    load,
    cpuMs,
    waitMs,
    allOpenAtSample: mem.allOpen,
    ...(extprocRssBefore !== undefined ? { extprocRssBefore } : {}),
    ...(mem.extproc !== undefined ? { extprocRssOpen: mem.extproc } : {}),
    ...(extprocBytesPerStream !== undefined ? { extprocBytesPerStream } : {}),
    ...(extprocLivePerStream !== undefined ? { extprocLivePerStream } : {}),
    ...(envoyBytesPerStream !== undefined ? { envoyBytesPerStream } : {}),
    ...(target.extprocPid ? { extprocCores: (cpuMs['extproc'] ?? 0) / 1000 / load.elapsedS } : {}),
  };
}

/**
 * A second, unmeasured round of the same streams: live memory (after a forced full GC, so garbage
 * does not count) with all streams open, minus live memory before, per stream. Separate from the
 * measured round because a full GC pauses the process.
 */
async function livePerStream(spec: LoadSpec, inspectPort: number): Promise<number | undefined> {
  const live = (m: LiveMemory): number => m.heapUsed + m.external;
  const idle = live(await liveMemory(inspectPort));
  let open: Promise<number> | undefined;
  await runLoadgen(spec, () => {
    open = new Promise((r) => setTimeout(r, 500)).then(async () => live(await liveMemory(inspectPort)));
  });
  const value = open ? await open : undefined;
  return value === undefined || spec.mode !== 'streams' ? undefined : (value - idle) / spec.concurrency;
}

/** `--envoy-stats`: Envoy's non-zero stats matching the flag, printed every second until stopped. */
function sampleEnvoyStats(target: Target, label: string): () => void {
  const filter = flags['envoy-stats'];
  const admin = target.envoyAdmin;
  if (!filter || !admin) return () => undefined;
  const timer = setInterval(() => {
    fetch(`${admin}/stats?filter=${encodeURIComponent(filter)}`)
      .then((res) => res.text())
      .then((text) => log(`  ${label} ${target.name} stats: ${text.split('\n').filter((l) => l.trim() && !/: (0|No recorded values)$/.test(l)).join(' | ') || '(all zero)'}`))
      .catch(() => undefined);
  }, 1000);
  return () => clearInterval(timer);
}

/** Sums of Envoy's ext_proc counters over all ext_proc filters: side streams started, messages sent. */
async function extprocCounters(adminUrl: string): Promise<{ streams: number; messages: number }> {
  const text = await (await fetch(`${adminUrl}/stats?filter=ext_proc`)).text();
  let streams = 0;
  let messages = 0;
  for (const line of text.split('\n')) {
    const m = /\.ext_proc\.(streams_started|stream_msgs_sent): (\d+)$/.exec(line);
    if (m?.[1] === 'streams_started') streams += Number(m[2]);
    else if (m?.[1] === 'stream_msgs_sent') messages += Number(m[2]);
  }
  return { streams, messages };
}

/** The message of the last error-level line in a Tollgate log, if any (why it did not start). */
async function lastError(logFile: string): Promise<string | undefined> {
  const text = await readFile(logFile, 'utf8').catch(() => '');
  for (const line of text.split('\n').reverse()) {
    if (!line.startsWith('{')) continue;
    try {
      const entry = JSON.parse(line) as { level?: number; msg?: string; err?: { message?: string } };
      if ((entry.level ?? 0) >= 50) return [entry.msg, entry.err?.message].filter(Boolean).join(': ');
    } catch {
      // not a log line
    }
  }
  return undefined;
}

/** Starts the do-nothing ext_proc (bench/echo-extproc.ts) on a Unix socket; resolves when it serves. */
async function startEcho(socket: string, logFile: string): Promise<ChildProcess> {
  const { openSync, closeSync, existsSync } = await import('node:fs');
  const fd = openSync(logFile, 'a');
  const child = spawn(process.execPath, [join(REPO_ROOT, 'dist/bench/echo-extproc.js'), `unix:${socket}`], { stdio: ['ignore', fd, fd], env: { ...process.env, ...(flags['gateway-node-options'] ? { NODE_OPTIONS: flags['gateway-node-options'] } : {}) } });
  closeSync(fd);
  let exited = false;
  child.once('exit', () => (exited = true));
  // The socket exists once the server listens.
  await waitFor('echo ext_proc', async () => exited || existsSync(socket));
  if (exited) throw new Error(`echo ext_proc exited at start; see ${logFile}`);
  return child;
}

/** Starts redis-server on a free port (Debian package; fails loudly when missing). */
async function startRedis(workDir: string): Promise<{ proc: ChildProcess; url: string }> {
  const port = await freePort();
  await mkdir(workDir, { recursive: true });
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', workDir], { stdio: 'ignore' });
  let exited = false;
  proc.once('exit', () => (exited = true));
  proc.once('error', () => (exited = true));
  await waitFor('redis-server', async () => {
    if (exited) return true;
    const { stdout } = await exec('redis-cli', ['-p', String(port), 'ping']);
    return stdout.trim() === 'PONG';
  });
  if (exited) throw new Error('redis-server exited at start; is the Debian redis-server package installed?');
  return { proc, url: `redis://127.0.0.1:${port}` };
}

/**
 * Proves limiting is really on before measuring it: the probe key may make 2 requests a minute,
 * so the third must be refused with 429. Returns why the scenario is unavailable, or undefined.
 */
async function probeLimits(baseUrl: string, body: string): Promise<string | undefined> {
  const statuses: number[] = [];
  for (let i = 0; i < 3; i++) statuses.push(await post(`${baseUrl}/v1/chat/completions`, PROBE_KEY, body));
  if (statuses[0] === 200 && statuses[1] === 200 && statuses[2] === 429) return undefined;
  return `not available: limits not implemented yet (probe key limited to 2 requests/min got ${statuses.join(', ')}, expected 200, 200, 429)`;
}

async function main(): Promise<void> {
  if (flags['config-scale']) {
    const source = flags['scale-source'];
    if (source !== 'file' && source !== 'kubernetes') throw new Error(`--scale-source must be file or kubernetes, got ${source}`);
    await runConfigScale({
      source,
      keys: Number(flags.keys),
      providers: Number(flags.providers),
      seconds: Number(flags.seconds),
      rate: Number(flags['scale-rate']),
      runLoadgen: (spec) => runLoadgen(spec),
      log,
    });
    return;
  }
  const startedAt = new Date().toISOString();
  const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
  const wantScenarios = (flags.scenarios?.split(',') as ScenarioName[] | undefined) ?? (flags.smoke ? [...SMOKE_SCENARIOS] : undefined);
  const wantTargets = (flags.targets?.split(',') as TargetName[] | undefined) ?? [...TARGETS];
  const plan = scenarios(durations).filter((s) => !wantScenarios || wantScenarios.includes(s.name));
  const wrk = await ensureWrk();
  const machine = await machineInfo();
  const ticksBefore = await machineTicks();
  const workDir = await mkdtemp(join(tmpdir(), 'tollgate-bench-'));
  const profileDir = join(workDir, 'profiles');
  log(`work dir ${workDir}; ${machine.cores} cores; load ${machine.loadBefore}`);

  const stops: (() => Promise<void> | void)[] = [];
  const targets: Target[] = [];
  const unavailable: Partial<Record<TargetName, string>> = {};
  const profiles: Partial<Record<TargetName, ProfileSummary>> = {};
  const gateways: Partial<Record<TargetName, ManagedProcess>> = {};
  const results: ScenarioResult[] = [];
  const failures: string[] = [];
  try {
    const fake = await FakeProcess.start(join(workDir, 'fake.log'));
    stops.push(() => fake.stop());
    const profileEnv = (name: string, inspectPort: number): NodeJS.ProcessEnv => {
      const options = [
        // Only for live-memory readings between measured runs (see livePerStream).
        `--inspect=127.0.0.1:${inspectPort}`,
        ...(flags['gateway-node-options'] ? [flags['gateway-node-options']] : []),
        ...(flags.profile ? [`--cpu-prof --cpu-prof-dir=${join(profileDir, name)}`] : []),
        ...(flags['heap-profile'] ? [`--heap-prof --heap-prof-dir=${join(profileDir, name)}`] : []),
      ];
      return options.length ? { NODE_OPTIONS: options.join(' ') } : {};
    };
    const gatewayArgs = ['--shutdown-grace-seconds', '2'];

    if (wantTargets.includes('direct')) targets.push({ name: 'direct', baseUrl: `http://127.0.0.1:${fake.port}` });
    if (wantTargets.includes('envoy')) {
      const dir = join(workDir, 'envoy-bare');
      const port = await freePort();
      const adminPort = await freePort();
      const envoy = await startEnvoy({ workDir: dir, extprocSocket: '', listenPort: port, adminPort, configText: await bareEnvoyConfig(port, adminPort, fake.port) });
      stops.push(() => envoy.process.stop());
      targets.push({ name: 'envoy', baseUrl: `http://127.0.0.1:${envoy.port}`, envoyPid: envoy.process.child.pid as number });
    }
    if (wantTargets.includes('envoy-echo')) {
      const dir = join(workDir, 'envoy-echo');
      await mkdir(dir, { recursive: true });
      const echo = await startEcho(join(dir, 'echo.sock'), join(dir, 'echo.log'));
      stops.push(() => void echo.kill('SIGTERM'));
      const port = await freePort();
      const adminPort = await freePort();
      const configText = await bareEnvoyConfig(port, adminPort, fake.port, join(dir, 'echo.sock'));
      const envoy = await startEnvoy({ workDir: dir, extprocSocket: '', listenPort: port, adminPort, configText });
      stops.push(() => envoy.process.stop());
      targets.push({
        name: 'envoy-echo',
        baseUrl: `http://127.0.0.1:${envoy.port}`,
        extprocPid: echo.pid as number,
        envoyPid: envoy.process.child.pid as number,
        envoyAdmin: `http://127.0.0.1:${adminPort}`,
      });
    }
    /** Tollgate + its Envoy; one retry, since a free port can be taken by another process in between. */
    const startTollgate = async (name: TargetName, files: Record<string, string>, extraArgs: readonly string[]): Promise<Target> => {
      for (let attempt = 1; ; attempt++) {
        const dir = join(workDir, `${name}-${attempt}`);
        await writeConfigDir(join(dir, 'config'), files);
        try {
          const inspectPort = await freePort();
          const gw = await startGateway({ workDir: dir, configDir: join(dir, 'config'), env: profileEnv(name, inspectPort), extraArgs: [...gatewayArgs, ...extraArgs] });
          stops.push(() => gw.process.stop());
          gateways[name] = gw.process;
          const envoy = await startEnvoy({ workDir: dir, extprocSocket: gw.socket });
          stops.push(() => envoy.process.stop());
          return {
            name,
            baseUrl: `http://127.0.0.1:${envoy.port}`,
            extprocPid: gw.process.child.pid as number,
            inspectPort,
            envoyPid: envoy.process.child.pid as number,
            envoyAdmin: `http://127.0.0.1:${envoy.adminPort}`,
          };
        } catch (err) {
          const fatal = await lastError(join(dir, 'tollgate.log'));
          // Only a port taken in between is worth a second try; anything else fails the same way again.
          const portRace = fatal === undefined || fatal.includes('EADDRINUSE');
          if (attempt >= 2 || !portRace) throw new Error(fatal ?? (err instanceof Error ? err.message : String(err)));
          log(`${name} did not start (${fatal ?? String(err)}); retrying once`);
        }
      }
    };
    // Auth + mapping + rewrite only: no limits, and streams are not metered for usage (the default
    // `--stream-usage=all` inspects every streamed chunk; the limits target keeps that default).
    if (wantTargets.includes('tollgate')) targets.push(await startTollgate('tollgate', basicFiles(fake.port, fake.translated), ['--stream-usage', 'limited']));
    if (wantTargets.includes('tollgate-guardrails')) {
      targets.push(await startTollgate('tollgate-guardrails', guardrailFiles(fake.port, fake.translated), ['--stream-usage', 'limited']));
    }
    if (wantTargets.includes('tollgate-limits')) {
      try {
        const redis = await startRedis(join(workDir, 'redis'));
        stops.push(() => void redis.proc.kill());
        const target = await startTollgate('tollgate-limits', limitsFiles(fake.port, 2, fake.translated), ['--redis-url', redis.url]);
        const why = await probeLimits(target.baseUrl, PROBE_BODY);
        if (why) throw new Error(why);
        targets.push(target);
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        unavailable['tollgate-limits'] = message.startsWith('not available') ? message : `not available: limits not implemented yet (${message.split('\n')[0]})`;
        log(`tollgate-limits: ${unavailable['tollgate-limits']}`);
      }
    }

    for (const s of plan) {
      await fake.configure(s.fake);
      const result: ScenarioResult = s.kind === 'request' ? { scenario: s, requests: [] } : { scenario: s, streams: [] };
      const rounds = s.kind === 'request' ? ROUNDS : 1;
      for (let round = 1; round <= rounds; round++) for (const target of targets) {
        // A scenario may concern some targets only (a translated provider means nothing to bare Envoy).
        if (s.targets && !s.targets.includes(target.name)) continue;
        if (flags.smoke && s.smokeTargets && !s.smokeTargets.includes(target.name)) continue;
        log(`${s.name} -> ${target.name}${rounds > 1 ? ` (round ${round}/${rounds})` : ''}`);
        try {
          if (s.kind === 'request') {
            const measured = await runRequestScenario(s, target, fake, wrk, workDir);
            const row: RequestRow = rounds > 1 ? { ...measured, round } : measured;
            result.requests?.push(row);
            log(`  max ${row.max.requestsPerS.toFixed(0)} req/s (${row.max.errors} errors); at ${row.fixedRate}/s p50 ${row.rate.latencyMs.p50.toFixed(2)} ms p99 ${row.rate.latencyMs.p99.toFixed(2)} ms` +
              (row.extprocCpuUsPerReqRate !== undefined ? `; ext_proc ${row.extprocCpuUsPerReqRate.toFixed(0)} µs CPU/req` : ''));
          } else {
            const row = await runStreamsScenario(s, target, fake);
            result.streams?.push(row);
            log(`  ${row.load.ok}/${row.load.sent} ok; ttfb p99 ${row.load.ttfbMs.p99.toFixed(1)} ms; duration max ${row.load.latencyMs.max.toFixed(0)} ms` +
              (row.extprocBytesPerStream !== undefined ? `; ext_proc RSS ${(row.extprocBytesPerStream / 1024).toFixed(1)} KiB/stream, live ${((row.extprocLivePerStream ?? NaN) / 1024).toFixed(1)} KiB/stream` : '') +
              (row.extprocCores !== undefined ? `; ext_proc ${row.extprocCores.toFixed(2)} cores` : ''));
          }
        } catch (err) {
          // One broken measurement must not lose the others: it is reported, the run goes on.
          const message = `${s.name} -> ${target.name}: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`;
          failures.push(message);
          log(`  FAILED ${message}`);
        }
      }
      results.push(result);
    }
    if (flags.profile || flags['heap-profile']) {
      for (const [name, gw] of Object.entries(gateways)) {
        await gw.stop();
        const dir = join(profileDir, name);
        const files = (await readdir(dir).catch(() => [])).filter((f) => f.endsWith('.cpuprofile'));
        if (files[0]) profiles[name as TargetName] = await summarizeProfile(join(dir, files[0]), 20);
      }
    }
  } finally {
    for (const stop of stops.reverse()) await Promise.resolve(stop()).catch(() => undefined);
  }

  const report: BenchReport = {
    startedAt,
    finishedAt: new Date().toISOString(),
    command,
    quick: flags.quick ?? false,
    rate: RATE,
    connections: CONNECTIONS,
    rounds: ROUNDS,
    machine: { ...machine, loadAfter: await loadAverage(), busyDuringRun: await machineTicks().then((t) => (t.busy - ticksBefore.busy) / Math.max(1, t.total - ticksBefore.total)) },
    unavailable,
    results,
    failures,
    profiles,
  };
  const resultsDir = join(REPO_ROOT, 'bench/results');
  await mkdir(resultsDir, { recursive: true });
  const jsonText = `${JSON.stringify(report, null, 1)}\n`;
  const stamp = startedAt.replace(/[:.]/g, '-');
  await writeFile(join(resultsDir, `bench-${stamp}.json`), jsonText);
  await writeFile(join(resultsDir, 'latest.json'), jsonText);
  if (flags.profile || flags['heap-profile']) {
    // Keep the raw profiles next to the JSON for flame-graph tools.
    await exec('cp', ['-r', profileDir, join(resultsDir, `profiles-${stamp}`)]).catch(() => undefined);
  }
  const markdown = renderMarkdown(report);
  if (writeDocsToo) await writeDocs(join(REPO_ROOT, 'docs/benchmarks.md'), markdown);
  process.stdout.write(markdown);
  log(`results: bench/results/bench-${stamp}.json${writeDocsToo ? ', docs/benchmarks.md' : ''}`);
  if (flags.keep) log(`kept ${workDir} (logs of every process)`);
  else await rm(workDir, { recursive: true, force: true });
  if (flags.smoke) {
    const broken = [...failures, ...Object.entries(unavailable).map(([name, why]) => `${name}: ${why}`)];
    if (broken.length > 0) {
      log(`smoke FAILED:\n  ${broken.join('\n  ')}`);
      process.exitCode = 1;
    } else log('smoke passed: every target started and answered');
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${String(err instanceof Error ? err.stack : err)}\n`);
  process.exit(1);
});
