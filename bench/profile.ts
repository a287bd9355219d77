/** Summarises a V8 .cpuprofile (node --cpu-prof): self time by function, heaviest first. */
import { readFile } from 'node:fs/promises';

interface CpuProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
}

interface CpuProfile {
  readonly nodes: readonly CpuProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface ProfileFrame {
  /** `function (file:line)`, with the file relative to the package or repository. */
  readonly frame: string;
  readonly selfMs: number;
  readonly selfPercent: number;
}

export interface ProfileSummary {
  readonly totalMs: number;
  /** Share of samples where the process was idle (waiting in the event loop). */
  readonly idlePercent: number;
  readonly top: readonly ProfileFrame[];
}

function shortUrl(url: string): string {
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) return url.slice(nm + 'node_modules/'.length);
  const dist = url.lastIndexOf('/dist/');
  if (dist >= 0) return url.slice(dist + 1);
  return url.replace(/^file:\/\//, '');
}

/** Self time per function (summed over its call sites), top `limit`, idle and GC shown as such. */
export function summarizeProfileData(profile: CpuProfile, limit: number): ProfileSummary {
  const byId = new Map<number, CpuProfileNode>();
  for (const n of profile.nodes) byId.set(n.id, n);
  const self = new Map<string, number>();
  let total = 0;
  let idle = 0;
  profile.samples.forEach((id, i) => {
    const dt = (profile.timeDeltas[i] ?? 0) / 1000;
    total += dt;
    const node = byId.get(id);
    const fn = node?.callFrame.functionName || '(anonymous)';
    if (fn === '(idle)') {
      idle += dt;
      return;
    }
    const key = node?.callFrame.url ? `${fn} (${shortUrl(node.callFrame.url)}:${node.callFrame.lineNumber + 1})` : fn;
    self.set(key, (self.get(key) ?? 0) + dt);
  });
  const busy = total - idle;
  const top = [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([frame, ms]) => ({ frame, selfMs: Math.round(ms), selfPercent: busy > 0 ? Math.round((ms / busy) * 1000) / 10 : 0 }));
  return { totalMs: Math.round(total), idlePercent: total > 0 ? Math.round((idle / total) * 1000) / 10 : 0, top };
}

export async function summarizeProfile(file: string, limit: number): Promise<ProfileSummary> {
  return summarizeProfileData(JSON.parse(await readFile(file, 'utf8')) as CpuProfile, limit);
}
