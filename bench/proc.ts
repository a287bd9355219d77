/** Per-process CPU and memory from /proc (Linux), for the processes the bench starts. */
import { readdir, readFile } from 'node:fs/promises';

/** Clock ticks per second of /proc/<pid>/stat times (CLK_TCK; 100 on every Linux we run on). */
export const CLOCK_TICKS = 100;

/** CPU time (user + system) of a process so far, in milliseconds; children that were waited for included when asked. */
export async function cpuMs(pid: number, withChildren = false): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime, stime, cutime, cstime are fields 14..17 of the full line (11..14 after the name).
  const [utime, stime, cutime, cstime] = [11, 12, 13, 14].map((i) => Number(fields[i]));
  const ticks = (utime ?? 0) + (stime ?? 0) + (withChildren ? (cutime ?? 0) + (cstime ?? 0) : 0);
  return (ticks * 1000) / CLOCK_TICKS;
}

/** Resident set size of a process, in bytes. */
export async function rssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

/** CPU milliseconds of several named processes at one moment. */
export async function cpuSnapshot(pids: Readonly<Record<string, number>>): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  await Promise.all(Object.entries(pids).map(async ([name, pid]) => (out[name] = await cpuMs(pid))));
  return out;
}

/** Per-process CPU ms between two snapshots. */
export function cpuDelta(before: Readonly<Record<string, number>>, after: Readonly<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, v] of Object.entries(after)) out[name] = v - (before[name] ?? 0);
  return out;
}

/** Machine load and what else is running, for the report: processes using the most CPU right now. */
export async function loadAverage(): Promise<string> {
  return (await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ');
}

/** Busy and total CPU time of the whole machine so far (from /proc/stat), in clock ticks. */
export async function machineTicks(): Promise<{ busy: number; total: number }> {
  const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0] ?? '';
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.reduce((a, b) => a + b, 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0); // idle + iowait
  return { busy: total - idle, total };
}

/**
 * Time a process's threads spent runnable but waiting for a CPU so far, in milliseconds
 * (/proc/<pid>/task/<tid>/schedstat, second field). On a shared machine this is the cost of every
 * wake-up: a request that crosses processes many times waits many times.
 */
export async function runQueueWaitMs(pid: number): Promise<number> {
  const tids = await readdir(`/proc/${pid}/task`).catch(() => [] as string[]);
  let ns = 0;
  await Promise.all(
    tids.map(async (tid) => {
      const fields = (await readFile(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').catch(() => '0 0 0')).trim().split(' ');
      ns += Number(fields[1] ?? 0) || 0;
    }),
  );
  return ns / 1e6;
}

/** Run-queue wait (ms) of several named processes at one moment. */
export async function waitSnapshot(pids: Readonly<Record<string, number>>): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  await Promise.all(Object.entries(pids).map(async ([name, pid]) => (out[name] = await runQueueWaitMs(pid))));
  return out;
}
