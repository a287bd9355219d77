/**
 * File config source: a directory of Kubernetes-style YAML (ModelProvider, ApiKey, Secret,
 * GatewayConfig). Reloads on change; a change that fails validation is reported with file,
 * resource and field, and the last good snapshot stays in force.
 *
 * Built for large files (100,000 keys in one 27 MB file): only files whose size or mtime changed
 * are read. The bytes of each file are kept (outside the JS heap), so a changed file is compared with
 * its previous bytes: the common prefix and suffix are found with memcmp, and only the documents in
 * between are decoded, parsed and validated. The resources that changed go to the incremental
 * snapshot builder, which recomputes only what depends on them. A one-line edit of a 100,000-key file
 * costs a few milliseconds. Long loops (first load, a rewritten file) are time-sliced
 * (config/slicer.ts) so requests keep flowing during a reload.
 */
import { watch, type FSWatcher } from 'node:fs';
import { open, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { YAMLException, loadAll } from 'js-yaml';
import type { Logger } from '../observability/logger.js';
import { configReloadsTotal } from '../observability/metrics.js';
import { IncrementalSnapshotBuilder, type ResourceChange } from './incremental.js';
import { formatIssue, parseDocument, type ConfigIssue, type ParsedDocument } from './parse.js';
import { Slicer } from './slicer.js';
import type { ConfigStore } from './store.js';

export interface FileSourceOptions {
  readonly directory: string;
  readonly store: ConfigStore;
  readonly logger: Logger;
  /** Delay that merges a burst of file events into one reload. */
  readonly debounceMs?: number;
  /** Safety-net poll (fs events can be missed on some mounts); 0 disables. */
  readonly pollMs?: number;
  /** Longest stretch of reload work between two turns of the event loop (0: never yield). */
  readonly sliceMs?: number;
}

/** Outcome of one load, for tests and logs. */
export type LoadOutcome =
  | { readonly kind: 'applied'; readonly version: number }
  | { readonly kind: 'unchanged' }
  | { readonly kind: 'rejected'; readonly issues: readonly string[] };

/**
 * One parsed document entry. A valid document is its own ResourceChange (kind, name, value), so an
 * unchanged document hands the builder the identical object; an invalid one carries its issues.
 */
type DocEntry =
  | (ResourceChange & { readonly label?: string; readonly path: string; readonly issues?: undefined })
  | { readonly kind?: undefined; readonly label: string; readonly path: string; readonly issues: readonly ConfigIssue[]; readonly identified: boolean };

/** What one document's bytes parsed to: usually one entry, several for a chunk the splitter could not cut. */
type CachedDocument = DocEntry | readonly DocEntry[];

interface FileState {
  readonly ino: number;
  readonly mtimeMs: number;
  readonly size: number;
  /** The bytes the documents were parsed from (compared with the next version of the file). */
  readonly bytes: Buffer;
  /** The allocation `bytes` lives in (recycled for the read after next). */
  readonly backing: Buffer;
  /** Byte offset of each document; documents[i] spans starts[i] .. starts[i + 1] (or the end). */
  readonly starts: readonly number[];
  readonly documents: readonly CachedDocument[];
  /** Documents with an issue (YAML or validation): issues are collected from these. */
  readonly faulty: number;
}

/** `Kind namespace/name`: how issues name a resource (built on demand, not stored per key). */
const labelOf = (e: DocEntry): string => (e.kind === undefined ? e.label : (e.label ?? `${e.kind} ${e.name}`));

/**
 * Label -> the entries defining it, stored per kind under the entry's own name string (no label
 * string kept per key). GatewayConfigs, which share one change name, are kept under their label.
 */
class Definitions {
  private readonly byKind = new Map<string, Map<string, DocEntry | DocEntry[]>>();
  private inner(kind: string): Map<string, DocEntry | DocEntry[]> {
    let m = this.byKind.get(kind);
    if (!m) this.byKind.set(kind, (m = new Map()));
    return m;
  }
  private static keyOf(e: DocEntry): string {
    return e.kind === 'GatewayConfig' || e.kind === undefined ? (e.label ?? '') : e.name;
  }
  get(label: string): DocEntry | DocEntry[] | undefined {
    const space = label.indexOf(' ');
    const kind = label.slice(0, space);
    return this.byKind.get(kind)?.get(kind === 'GatewayConfig' ? label : label.slice(space + 1));
  }
  getFor(e: DocEntry): DocEntry | DocEntry[] | undefined {
    return this.byKind.get(e.kind ?? '')?.get(Definitions.keyOf(e));
  }
  setFor(e: DocEntry, value: DocEntry | DocEntry[]): void {
    this.inner(e.kind ?? '').set(Definitions.keyOf(e), value);
  }
  deleteFor(e: DocEntry): void {
    this.byKind.get(e.kind ?? '')?.delete(Definitions.keyOf(e));
  }
  /** Labels of every GatewayConfig defined. */
  gatewayLabels(): string[] {
    return [...(this.byKind.get('GatewayConfig')?.keys() ?? [])];
  }
}

const entriesOf = (d: CachedDocument): readonly DocEntry[] => (Array.isArray(d) ? (d as readonly DocEntry[]) : [d as DocEntry]);

const GATEWAY_PREFIX = 'GatewayConfig ';

export class FileConfigSource {
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private poller: NodeJS.Timeout | undefined;
  private version = 0;
  private loading: Promise<LoadOutcome> | undefined;
  private reloadQueued = false;
  private started = false;

  private readonly builder = new IncrementalSnapshotBuilder();
  private readonly files = new Map<string, FileState>();
  /** Label -> the document entries defining it (more than one is an error). */
  private readonly definitions = new Definitions();
  /** Labels defined more than once. */
  private readonly duplicated = new Set<string>();
  /** Labels of GatewayConfig documents (more than one is an error). */
  private readonly gatewayLabels = new Set<string>();
  /** Changes not yet in the builder's applied state (kept across a rejected reload). */
  private readonly pending = new Map<string, ResourceChange>();

  /**
   * A spare read buffer per file. A changed file is read into it and the previous bytes' buffer
   * becomes the next spare: rereading a 27 MB file allocates nothing, so no external-memory
   * pressure forces a full, blocking garbage collection on each change.
   */
  private readonly spare = new Map<string, Buffer>();

  constructor(private readonly options: FileSourceOptions) {}

  /** Reads a file into its spare buffer (grown when the file outgrew it). */
  private async readBytes(path: string): Promise<{ backing: Buffer; bytes: Buffer }> {
    const fh = await open(path, 'r');
    try {
      const size = (await fh.stat()).size;
      let backing = this.spare.get(path);
      this.spare.delete(path);
      if (!backing || backing.length < size) backing = Buffer.allocUnsafeSlow(Math.ceil(size * 1.25) + 4096);
      let offset = 0;
      while (offset < size) {
        const { bytesRead } = await fh.read(backing, offset, size - offset, offset);
        if (bytesRead === 0) break; // truncated meanwhile: the next event reads it again
        offset += bytesRead;
      }
      return { backing, bytes: backing.subarray(0, offset) };
    } finally {
      await fh.close();
    }
  }

  /** Loads once and starts watching. Rejects if the first load is invalid (nothing to fall back to). */
  async start(): Promise<void> {
    const first = await this.reload();
    if (first.kind === 'rejected') {
      throw new Error(`invalid config in ${this.options.directory}:\n  ${first.issues.join('\n  ')}`);
    }
    this.started = true;
    this.watcher = watch(this.options.directory, () => this.schedule());
    this.watcher.on('error', (err) => this.options.logger.warn({ err }, 'config watch failed; polling only'));
    const pollMs = this.options.pollMs ?? 5000;
    if (pollMs > 0) this.poller = setInterval(() => this.schedule(), pollMs).unref();
  }

  stop(): void {
    this.watcher?.close();
    if (this.timer) clearTimeout(this.timer);
    if (this.poller) clearInterval(this.poller);
  }

  private schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.reload();
    }, this.options.debounceMs ?? 100);
  }

  /** Reads what changed in the directory and applies it if valid. Serialised: never two at once. */
  async reload(): Promise<LoadOutcome> {
    if (this.loading) {
      this.reloadQueued = true;
      return this.loading;
    }
    this.loading = this.loadOnce();
    try {
      return await this.loading;
    } finally {
      this.loading = undefined;
      if (this.reloadQueued) {
        this.reloadQueued = false;
        this.schedule();
      }
    }
  }

  private async loadOnce(): Promise<LoadOutcome> {
    const { logger, directory, store } = this.options;
    // Before the first snapshot nothing is served, so the first load runs flat out.
    const slicer = new Slicer(this.started ? (this.options.sliceMs ?? 4) : 0);
    const startedAt = performance.now();
    let changedFiles: string[];
    try {
      changedFiles = await this.readChangedFiles(slicer);
    } catch (err) {
      logger.error({ err, directory }, 'cannot read config directory; keeping the config in force');
      return { kind: 'rejected', issues: [String(err)] };
    }
    if (changedFiles.length === 0 && (store.current() !== undefined || this.version > 0)) return { kind: 'unchanged' };

    const issues = this.currentIssues();
    if (issues.length > 0) return this.reject(issues.map(formatIssue));

    // Apply the pending changes, remembering how to undo them if the result has problems.
    const undo: ResourceChange[] = [];
    for (const change of this.pending.values()) {
      undo.push({ ...change, value: this.builder.get(change.kind, change.name) } as ResourceChange);
      this.builder.apply(change);
    }
    const built = await this.builder.build(this.version + 1, slicer);
    if (built.problems.length > 0) {
      const lines = built.problems.map((p) => {
        const resource = `${p.kind} ${p.name}`;
        return formatIssue({ source: this.originOf(resource), resource, field: p.field ?? '', message: `${p.reason}: ${p.message}` });
      });
      for (const change of undo.reverse()) this.builder.apply(change);
      await this.builder.build(this.version, slicer);
      return this.reject(lines);
    }
    this.pending.clear();
    this.version += 1;
    const { snapshot } = built;
    store.swap(snapshot);
    configReloadsTotal.inc({ result: 'applied' });
    logger.info(
      {
        version: snapshot.version,
        keys: snapshot.keysByHash.size,
        models: snapshot.servedModels.length,
        files: changedFiles.length,
        recomputedKeys: built.recomputedKeys,
        ms: Math.round(performance.now() - startedAt),
        pauses: slicer.pauses,
        mcpServers: snapshot.mcp.servers.size,
      },
      'config applied',
    );
    return { kind: 'applied', version: snapshot.version };
  }

  private reject(lines: string[]): LoadOutcome {
    configReloadsTotal.inc({ result: 'rejected' });
    this.options.logger.error({ issues: lines, keptVersion: this.options.store.current()?.version }, 'config rejected; keeping the last good config');
    return { kind: 'rejected', issues: lines };
  }

  private originOf(label: string): string {
    const def = this.definitions.get(label);
    return (Array.isArray(def) ? def[0]?.path : def?.path) ?? this.options.directory;
  }

  /** Every issue of the directory as it is now: per-document issues, then cross-document ones. */
  private currentIssues(): ConfigIssue[] {
    const issues: ConfigIssue[] = [];
    for (const f of this.files.values()) {
      if (f.faulty === 0) continue;
      for (const d of f.documents) for (const e of entriesOf(d)) if (e.issues) issues.push(...e.issues);
    }
    for (const label of this.duplicated) {
      const defs = [...entriesOf(this.definitions.get(label) as CachedDocument)].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
      for (const d of defs.slice(1)) {
        issues.push({ source: d.path, resource: label, field: 'metadata.name', message: `duplicate resource; already defined in ${defs[0]?.path ?? ''}` });
      }
    }
    if (this.gatewayLabels.size > 1) {
      for (const label of [...this.gatewayLabels].sort().slice(1)) {
        issues.push({ source: this.originOf(label), resource: label, field: 'kind', message: 'only one GatewayConfig is allowed' });
      }
    }
    return issues;
  }

  /** Re-reads files whose size or mtime changed (and drops removed ones); returns their paths. */
  private async readChangedFiles(slicer: Slicer): Promise<string[]> {
    const { directory } = this.options;
    const names = (await readdir(directory)).filter((n) => /\.(ya?ml|json)$/.test(n) && !n.startsWith('.')).sort();
    const paths = new Set(names.map((n) => join(directory, n)));
    const changed: string[] = [];
    for (const path of [...this.files.keys()]) {
      if (!paths.has(path)) {
        const old = this.files.get(path) as FileState;
        this.files.delete(path);
        this.spare.delete(path);
        await this.record(old.documents, [], slicer);
        changed.push(path);
      }
    }
    for (const path of paths) {
      let info;
      try {
        info = await stat(path);
      } catch {
        continue; // removed between readdir and stat: the next reload sees it gone
      }
      const old = this.files.get(path);
      if (old && old.ino === info.ino && old.mtimeMs === info.mtimeMs && old.size === info.size) continue;
      const { backing, bytes } = await this.readBytes(path);
      slicer.restart();
      if (await this.updateFile(path, bytes, backing, { ino: info.ino, mtimeMs: info.mtimeMs }, old, slicer)) {
        changed.push(path);
        if (old) this.spare.set(path, old.backing);
      } else {
        this.spare.set(path, backing);
      }
    }
    return changed;
  }

  /**
   * Parses what changed in a file: the documents between the common prefix and suffix of the old and
   * new bytes (plus one neighbour each side, whose boundary the edit may have moved). Returns false
   * when the bytes are the same (a touch).
   */
  private async updateFile(
    path: string,
    bytes: Buffer,
    backing: Buffer,
    version: { readonly ino: number; readonly mtimeMs: number },
    old: FileState | undefined,
    slicer: Slicer,
  ): Promise<boolean> {
    if (old && old.bytes.equals(bytes)) {
      this.files.set(path, { ...old, ...version });
      return false;
    }
    const delta = bytes.length - (old?.bytes.length ?? 0);
    // YAML issues quote line numbers, which an edit above them shifts: then reparse the whole file.
    if (old && old.faulty > 0) {
      this.files.delete(path);
      await this.record(old.documents, [], slicer);
      old = undefined;
    }
    let keepHead = 0; // documents kept from the start of the old file
    let keepTail = 0; // ... and from its end
    if (old && old.documents.length > 0 && bytes.length > 0) {
      const n = old.documents.length;
      const prefix = commonPrefix(old.bytes, bytes);
      const suffix = commonSuffix(old.bytes, bytes, Math.min(old.bytes.length, bytes.length) - prefix);
      const endOf = (i: number): number => old.starts[i + 1] ?? old.bytes.length;
      // First document touched by the edit, and last; then one more on each side.
      let first = 0;
      while (first < n - 1 && endOf(first) <= prefix) first += 1;
      let last = n - 1;
      while (last > 0 && (old.starts[last] as number) >= old.bytes.length - suffix) last -= 1;
      keepHead = Math.max(0, Math.min(first, last) - 1);
      keepTail = Math.max(0, n - 1 - (Math.max(first, last) + 1));
    }
    const regionStart = old && keepHead > 0 ? (old.starts[keepHead] as number) : 0;
    const regionEnd = old && keepTail > 0 ? (old.starts[old.documents.length - keepTail] as number) + delta : bytes.length;

    const starts: number[] = old ? old.starts.slice(0, keepHead) : [];
    const documents: CachedDocument[] = old ? old.documents.slice(0, keepHead) : [];
    const lines = new LineIndex(bytes);
    const chunks = [...splitDocuments(bytes.subarray(regionStart, regionEnd))].map(([s, e]) => [regionStart + s, regionStart + e] as const);
    // Documents of the region whose bytes did not change (the neighbours) keep their parsed entries.
    const oldRegion = old ? old.documents.length - keepTail - keepHead : 0;
    const sameAsOld = (chunk: readonly [number, number], i: number): boolean => {
      if (!old || i < keepHead || i >= old.documents.length - keepTail) return false;
      const os = old.starts[i] as number;
      const oe = old.starts[i + 1] ?? old.bytes.length;
      return oe - os === chunk[1] - chunk[0] && old.bytes.compare(bytes, chunk[0], chunk[1], os, oe) === 0;
    };
    let head = 0;
    while (head < chunks.length && head < oldRegion && sameAsOld(chunks[head] as [number, number], keepHead + head)) head += 1;
    let tail = 0;
    while (tail < chunks.length - head && tail < oldRegion - head && sameAsOld(chunks[chunks.length - 1 - tail] as [number, number], keepHead + oldRegion - 1 - tail)) tail += 1;
    chunks.forEach(([start], k) => {
      starts.push(start);
      if (k < head) documents.push(old?.documents[keepHead + k] as CachedDocument);
    });
    for (let k = head; k < chunks.length - tail; k++) {
      const [start, end] = chunks[k] as [number, number];
      documents.push(parseChunk(path, bytes.toString('utf8', start, end), () => lines.lineOf(start), documents.length));
      if (slicer.tick()) await slicer.pause();
    }
    for (let k = chunks.length - tail; k < chunks.length; k++) documents.push(old?.documents[keepHead + oldRegion - (chunks.length - k)] as CachedDocument);
    if (old && keepTail > 0) {
      const from = old.documents.length - keepTail;
      for (let i = from; i < old.documents.length; i++) starts.push((old.starts[i] as number) + delta);
      for (let i = from; i < old.documents.length; i++) documents.push(old.documents[i] as CachedDocument);
    }
    let faulty = 0;
    for (let i = keepHead; i < documents.length - keepTail; i++) if (entriesOf(documents[i] as CachedDocument).some((e) => e.issues)) faulty += 1;
    const removed = old ? old.documents.slice(keepHead + head, old.documents.length - keepTail - tail) : [];
    const added = documents.slice(keepHead + head, documents.length - keepTail - tail);
    this.files.set(path, { ...version, size: bytes.length, bytes, backing, starts, documents, faulty });
    await this.record(removed, added, slicer);
    return true;
  }

  /** Updates the definitions for documents that went and came, and queues the resulting changes. */
  private async record(removed: readonly CachedDocument[], added: readonly CachedDocument[], slicer: Slicer): Promise<void> {
    const touched = new Set<string>();
    for (const d of removed) {
      for (const e of entriesOf(d)) {
        if (e.kind === undefined) continue;
        const def = this.definitions.getFor(e);
        if (Array.isArray(def)) {
          const rest = def.filter((x) => x !== e);
          if (rest.length === 1) this.definitions.setFor(e, rest[0] as DocEntry);
          else this.definitions.setFor(e, rest);
        } else if (def === e) this.definitions.deleteFor(e);
        touched.add(labelOf(e));
      }
      if (slicer.tick()) await slicer.pause();
    }
    for (const d of added) {
      for (const e of entriesOf(d)) {
        if (e.kind === undefined) continue;
        const def = this.definitions.getFor(e);
        if (def === undefined) this.definitions.setFor(e, e);
        else this.definitions.setFor(e, [...entriesOf(def), e]);
        touched.add(labelOf(e));
      }
      if (slicer.tick()) await slicer.pause();
    }
    let gatewayTouched = false;
    for (const label of touched) {
      const def = this.definitions.get(label);
      if (Array.isArray(def) && def.length > 1) this.duplicated.add(label);
      else this.duplicated.delete(label);
      if (label.startsWith(GATEWAY_PREFIX)) {
        gatewayTouched = true;
        if (def === undefined) this.gatewayLabels.delete(label);
        else this.gatewayLabels.add(label);
        continue;
      }
      const current = Array.isArray(def) ? def[0] : def;
      this.pending.set(label, current?.kind !== undefined ? current : removalOf(label));
      if (slicer.tick()) await slicer.pause();
    }
    // The GatewayConfig is one resource whatever its name: re-derive it when any definition moved.
    if (gatewayTouched) {
      const label = [...this.gatewayLabels].sort()[0];
      const def = label === undefined ? undefined : this.definitions.get(label);
      const current = Array.isArray(def) ? def[0] : def;
      this.pending.set(GATEWAY_PREFIX, current?.kind === 'GatewayConfig' ? current : { kind: 'GatewayConfig', name: 'gateway', value: undefined });
    }
  }
}

/** The change that removes the resource a label names (`Kind namespace/name`). */
function removalOf(label: string): ResourceChange {
  const space = label.indexOf(' ');
  const kind = label.slice(0, space) as 'ApiKey' | 'ModelProvider' | 'Secret' | 'MCPServer' | 'PromptTemplate';
  return { kind, name: label.slice(space + 1), value: undefined };
}

function entryOf(path: string, p: ParsedDocument): DocEntry {
  const r = p.resource;
  if (!r || p.issues.length > 0) return { label: p.label, path, issues: p.issues, identified: p.identified };
  switch (r.kind) {
    case 'ApiKey':
    case 'ModelProvider':
    case 'MCPServer':
    case 'PromptTemplate':
      // join, not a template: a flat string (a template keeps a cons string of two parts per key).
      return { kind: r.kind, name: [r.value.metadata.namespace ?? 'default', r.value.metadata.name].join('/'), value: r.value, path } as DocEntry;
    case 'Secret':
      return { kind: 'Secret', name: `${r.value.namespace}/${r.value.name}`, value: r.value, path };
    case 'GatewayConfig':
      return { kind: 'GatewayConfig', name: 'gateway', value: r.value, label: p.label, path };
  }
}

/** Parses one document's text (YAML; JSON is YAML too). */
function parseChunk(path: string, text: string, firstLine: () => number, index: number): CachedDocument {
  const docs: unknown[] = [];
  try {
    loadAll(text, (d) => docs.push(d));
  } catch (err) {
    // Only the reason and position: the exception's message quotes the line, which may hold a credential.
    const reason = err instanceof YAMLException ? err.reason : 'cannot parse';
    const mark = err instanceof YAMLException ? err.mark : undefined;
    const where = mark ? `line ${firstLine() + mark.line + 1}, column ${mark.column + 1}: ` : '';
    return { label: 'YAML', path, identified: false, issues: [{ source: path, resource: 'YAML', field: '', message: `${where}${reason}` }] };
  }
  const entries: DocEntry[] = [];
  // A JSON round trip gives compact objects with flat strings: js-yaml's values are slices of the
  // document text and would keep all of it alive (about 2x the heap per key).
  for (const d of JSON.parse(JSON.stringify(docs)) as unknown[]) {
    const p = parseDocument(path, d, index + entries.length + 1);
    if (p) entries.push(entryOf(path, p));
  }
  return entries.length === 1 ? (entries[0] as DocEntry) : entries;
}

/** Length of the common prefix of two buffers (memcmp in 64 KiB blocks, then bytes). */
export function commonPrefix(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  const block = 65536;
  let i = 0;
  while (i + block <= n && a.compare(b, i, i + block, i, i + block) === 0) i += block;
  while (i < n && a[i] === b[i]) i += 1;
  return i;
}

/** Length of the common suffix of two buffers, at most `max`. */
export function commonSuffix(a: Buffer, b: Buffer, max: number): number {
  const block = 65536;
  let k = 0;
  while (k + block <= max && a.compare(b, b.length - k - block, b.length - k, a.length - k - block, a.length - k) === 0) k += block;
  while (k < max && a[a.length - 1 - k] === b[b.length - 1 - k]) k += 1;
  return k;
}

const NL = 0x0a;

/**
 * Byte ranges of the YAML documents in a file: each starts at a `---` line (or the file start).
 * Files with directives (`%`) or document-end markers (`...`) are returned whole, which is always
 * correct, only slower.
 */
export function* splitDocuments(bytes: Buffer): Generator<[number, number]> {
  if (bytes.length === 0) return;
  if (bytes[0] === 0x25 || bytes.indexOf('\n%') >= 0 || hasMarker(bytes, '...')) {
    yield [0, bytes.length];
    return;
  }
  let start = 0;
  let pos = 0;
  for (;;) {
    const at = bytes.indexOf('\n---', pos);
    if (at < 0) break;
    const after = bytes[at + 4];
    pos = at + 4;
    if (after !== undefined && after !== NL && after !== 0x20 && after !== 0x09 && after !== 0x0d) continue; // `----`, `---x`
    if (at + 1 > start) yield [start, at + 1];
    start = at + 1;
  }
  if (start < bytes.length) yield [start, bytes.length];
}

function hasMarker(bytes: Buffer, marker: string): boolean {
  let pos = 0;
  for (;;) {
    const at = bytes.indexOf(`\n${marker}`, pos);
    if (at < 0) return bytes.subarray(0, marker.length).toString() === marker && isEnd(bytes[marker.length]);
    if (isEnd(bytes[at + 1 + marker.length])) return true;
    pos = at + 1;
  }
}

function isEnd(b: number | undefined): boolean {
  return b === undefined || b === NL || b === 0x20 || b === 0x09 || b === 0x0d;
}

/** Line numbers of byte offsets, counted once per file and only when an issue needs one. */
class LineIndex {
  private starts: number[] | undefined;
  constructor(private readonly bytes: Buffer) {}
  lineOf(offset: number): number {
    if (offset === 0) return 0;
    if (!this.starts) {
      const starts = [0];
      for (let at = this.bytes.indexOf(NL); at >= 0; at = this.bytes.indexOf(NL, at + 1)) starts.push(at + 1);
      this.starts = starts;
    }
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((this.starts[mid] as number) <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
}
