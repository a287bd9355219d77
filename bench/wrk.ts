/**
 * Closed-loop maximum throughput with wrk (Debian package, C, one thread): far cheaper per request
 * than any Node client, so on a 2-core machine it takes the least CPU away from what is measured.
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CLOCK_TICKS } from './proc.js';
import { UNIQUE_MARK, uniqueBase } from './unique-body.js';

const run = promisify(execFile);

export interface WrkSpec {
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  readonly connections: number;
  readonly durationS: number;
}

export interface WrkResult {
  readonly requests: number;
  readonly durationS: number;
  readonly requestsPerS: number;
  /** Connect/read/write/timeout errors plus non-2xx/3xx answers. */
  readonly errors: number;
  readonly latencyMs: { readonly p50: number; readonly p90: number; readonly p99: number; readonly max: number };
  /** wrk's own CPU time. */
  readonly cpuMs: number;
}

/** Installs wrk from Debian packages when it is missing (never downloads a binary). */
export async function ensureWrk(): Promise<string> {
  const found = await run('bash', ['-c', 'command -v wrk || true']);
  if (found.stdout.trim()) return found.stdout.trim();
  const sudo = process.getuid?.() === 0 ? '' : 'sudo ';
  process.stderr.write('[bench] installing wrk (Debian package)\n');
  await run('bash', ['-c', `${sudo}apt-get install -y -qq wrk >/dev/null 2>&1 || (${sudo}apt-get update -qq && ${sudo}apt-get install -y -qq wrk)`], {
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    maxBuffer: 16 << 20,
  });
  const again = await run('bash', ['-c', 'command -v wrk']);
  return again.stdout.trim();
}

function luaString(text: string): string {
  let level = '';
  while (text.includes(`]${level}]`)) level += '=';
  return `[${level}[${text}]${level}]`;
}

/** The Lua script: POST with body and headers, and a JSON summary line at the end. */
export function wrkScript(spec: Pick<WrkSpec, 'headers' | 'body'>): string {
  const headers = Object.entries(spec.headers)
    .map(([k, v]) => `wrk.headers[ ${luaString(k)} ] = ${luaString(v)}`)
    .join('\n');
  const marked = spec.body.indexOf(UNIQUE_MARK);
  // A body with UNIQUE_MARK gets a fresh number per request, starting from a per-run base so runs
  // (warm-up, measured) never repeat a body.
  const body =
    marked < 0
      ? `wrk.body = ${luaString(spec.body)}`
      : `local prefix = ${luaString(spec.body.slice(0, marked))}
local suffix = ${luaString(spec.body.slice(marked + UNIQUE_MARK.length))}
local counter = ${uniqueBase()}
request = function()
  counter = counter + 1
  return wrk.format(nil, nil, nil, prefix .. counter .. suffix)
end`;
  return `wrk.method = "POST"
${body}
${headers}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests":%d,"duration_us":%d,"errors":%d,"p50":%d,"p90":%d,"p99":%d,"max":%d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
`;
}

/** Runs wrk once; its CPU time is read from the wrapping shell's accounting of waited-for children. */
export async function runWrk(wrk: string, workDir: string, name: string, spec: WrkSpec): Promise<WrkResult> {
  const script = join(workDir, `${name}.lua`);
  await writeFile(script, wrkScript(spec));
  const args = ['-t1', `-c${spec.connections}`, `-d${spec.durationS}s`, '--timeout', '10s', '-s', script, spec.url];
  const shell = `"$0" "$@"; rc=$?; echo "CHILDSTAT $(cat /proc/$$/stat)"; exit $rc`;
  const { stdout } = await run('bash', ['-c', shell, wrk, ...args], { maxBuffer: 16 << 20 });
  const line = stdout.split('\n').find((l) => l.startsWith('WRKJSON '));
  if (!line) throw new Error(`wrk printed no summary:\n${stdout}`);
  const r = JSON.parse(line.slice(8)) as Record<string, number>;
  // Which errors (socket errors by kind, non-2xx answers): wrk's own report, kept with --keep.
  if ((r['errors'] ?? 0) > 0) await writeFile(join(workDir, `${name}.wrk.txt`), stdout);
  const statLine = stdout.split('\n').find((l) => l.startsWith('CHILDSTAT ')) ?? '';
  const fields = statLine.slice(statLine.lastIndexOf(')') + 2).split(' ');
  const cpuMs = (((Number(fields[13]) || 0) + (Number(fields[14]) || 0)) * 1000) / CLOCK_TICKS;
  const durationS = (r['duration_us'] ?? 0) / 1e6;
  const us = (k: string): number => (r[k] ?? 0) / 1000;
  return {
    requests: r['requests'] ?? 0,
    durationS,
    requestsPerS: (r['requests'] ?? 0) / durationS,
    errors: r['errors'] ?? 0,
    latencyMs: { p50: us('p50'), p90: us('p90'), p99: us('p99'), max: us('max') },
    cpuMs,
  };
}
