/**
 * File config source: a directory of Kubernetes-style YAML (ModelProvider, ApiKey, Secret,
 * GatewayConfig). Reloads on change; a change that fails validation is reported with file,
 * resource and field, and the last good snapshot stays in force.
 *
 * Built for large files (100,000 keys in one 27 MB file): only files whose size or mtime changed
 * are read; a changed file is split into its documents, and only documents whose bytes changed are
 * decoded, parsed and validated (an unchanged document is recognised by a hash of its bytes). The
 * resources that changed go to the incremental snapshot builder, which recomputes only what depends
 * on them. Long loops are time-sliced (config/slicer.ts) so requests keep flowing during a reload.
 */
import { hash } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
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

/** One document of a file, parsed once and reused while its bytes stay the same. */
interface CachedDocument {
  /** Byte offset of the document in its file: YAML issues quote lines counted from here. */
  readonly start: number;
  readonly parsed: readonly ParsedDocument[];
  /** Issues that are not tied to one resource (YAML syntax). */
  readonly yamlIssues: readonly ConfigIssue[];
}

interface FileState {
  readonly mtimeMs: number;
  readonly size: number;
  /** Document hash -> parsed document. */
  readonly documents: ReadonlyMap<string, CachedDocument>;
  /** Valid resources of the file by label (`Kind namespace/name`). */
  readonly resources: ReadonlyMap<string, ResourceChange>;
  readonly issues: readonly ConfigIssue[];
}

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
  /** Label -> files defining it (more than one is an error). */
  private readonly definitions = new Map<string, string[]>();
  /** Changes not yet in the builder's applied state (kept across a rejected reload). */
  private readonly pending = new Map<string, ResourceChange>();

  constructor(private readonly options: FileSourceOptions) {}

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
    return this.definitions.get(label)?.[0] ?? this.options.directory;
  }

  /** Every issue of the directory as it is now: per-file issues, then cross-file ones. */
  private currentIssues(): ConfigIssue[] {
    const issues: ConfigIssue[] = [];
    for (const f of this.files.values()) issues.push(...f.issues);
    let gateway: string | undefined;
    for (const [label, paths] of this.definitions) {
      if (paths.length > 1) {
        for (const p of paths.slice(1)) {
          issues.push({ source: p, resource: label, field: 'metadata.name', message: `duplicate resource; already defined in ${paths[0] ?? ''}` });
        }
      }
      if (label.startsWith(GATEWAY_PREFIX)) {
        if (gateway !== undefined) issues.push({ source: paths[0] ?? '', resource: label, field: 'kind', message: 'only one GatewayConfig is allowed' });
        gateway = label;
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
    for (const path of this.files.keys()) {
      if (!paths.has(path)) {
        await this.replaceFile(path, undefined, slicer);
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
      if (old && old.mtimeMs === info.mtimeMs && old.size === info.size) continue;
      const bytes = await readFile(path);
      slicer.restart();
      await this.replaceFile(path, await this.parseFile(path, bytes, info.mtimeMs, old, slicer), slicer);
      changed.push(path);
    }
    return changed;
  }

  /** Splits a file into documents and parses those not seen before. */
  private async parseFile(path: string, bytes: Buffer, mtimeMs: number, old: FileState | undefined, slicer: Slicer): Promise<FileState> {
    const documents = new Map<string, CachedDocument>();
    const resources = new Map<string, ResourceChange>();
    const issues: ConfigIssue[] = [];
    const lines = new LineIndex(bytes);
    let index = 0;
    for (const [start, end] of splitDocuments(bytes)) {
      const id = hash('sha1', bytes.subarray(start, end), 'base64');
      let doc = documents.get(id) ?? old?.documents.get(id);
      // YAML issues quote line numbers: reparse a broken document that moved.
      if (doc && doc.yamlIssues.length > 0 && doc.start !== start) doc = undefined;
      if (!doc) doc = parseChunk(path, bytes.toString('utf8', start, end), start, () => lines.lineOf(start), index);
      documents.set(id, doc);
      issues.push(...doc.yamlIssues);
      for (const p of doc.parsed) {
        index += 1;
        if (p.identified && resources.has(p.label)) {
          issues.push({ source: path, resource: p.label, field: 'metadata.name', message: `duplicate resource; already defined in ${path}` });
          continue;
        }
        issues.push(...p.issues);
        if (p.resource) resources.set(p.label, toChange(p));
      }
      if (slicer.tick()) await slicer.pause();
    }
    return { mtimeMs, size: bytes.length, documents, resources, issues };
  }

  /** Installs a file's new state and records which resources changed because of it. */
  private async replaceFile(path: string, next: FileState | undefined, slicer: Slicer): Promise<void> {
    const old = this.files.get(path);
    const touched: string[] = [];
    for (const [label, change] of next?.resources ?? []) {
      if (old?.resources.get(label) !== change) touched.push(label);
      if (slicer.tick()) await slicer.pause();
    }
    for (const label of old?.resources.keys() ?? []) {
      if (!next?.resources.has(label)) touched.push(label);
      if (slicer.tick()) await slicer.pause();
    }
    if (next) this.files.set(path, next);
    else this.files.delete(path);
    for (const label of touched) {
      const definers = (this.definitions.get(label) ?? []).filter((p) => p !== path);
      if (next?.resources.has(label)) definers.push(path);
      definers.sort();
      if (definers.length > 0) this.definitions.set(label, definers);
      else this.definitions.delete(label);
      const from = definers[0];
      const change = from === undefined ? undefined : this.files.get(from)?.resources.get(label);
      this.pending.set(label, change ?? removal(label, old?.resources.get(label)));
    }
    // The GatewayConfig is one resource whatever its name: re-derive it when any definition moved.
    if (touched.some((l) => l.startsWith(GATEWAY_PREFIX))) {
      for (const label of this.pending.keys()) if (label.startsWith(GATEWAY_PREFIX)) this.pending.delete(label);
      const labels = [...this.definitions.keys()].filter((l) => l.startsWith(GATEWAY_PREFIX));
      const first = labels[0];
      const def = first === undefined ? undefined : this.files.get(this.definitions.get(first)?.[0] ?? '')?.resources.get(first);
      this.pending.set(GATEWAY_PREFIX, def ?? { kind: 'GatewayConfig', name: 'gateway', value: undefined });
    }
  }
}

/** One change object per parsed document, so an unchanged document yields the identical change. */
const changes = new WeakMap<ParsedDocument, ResourceChange>();

function toChange(p: ParsedDocument): ResourceChange {
  let change = changes.get(p);
  if (!change) changes.set(p, (change = makeChange(p)));
  return change;
}

function makeChange(p: ParsedDocument): ResourceChange {
  const r = p.resource;
  if (!r) throw new Error('toChange needs a resource');
  switch (r.kind) {
    case 'ApiKey':
    case 'ModelProvider':
    case 'MCPServer':
      return { kind: r.kind, name: `${r.value.metadata.namespace ?? 'default'}/${r.value.metadata.name}`, value: r.value } as ResourceChange;
    case 'Secret':
      return { kind: 'Secret', name: `${r.value.namespace}/${r.value.name}`, value: r.value };
    case 'GatewayConfig':
      return { kind: 'GatewayConfig', name: 'gateway', value: r.value };
  }
}

/** The change that removes what `previous` defined. */
function removal(label: string, previous: ResourceChange | undefined): ResourceChange {
  if (!previous) throw new Error(`no previous definition of ${label}`);
  return { ...previous, value: undefined } as ResourceChange;
}

/** Parses one document's text (YAML; JSON is YAML too). */
function parseChunk(path: string, text: string, start: number, firstLine: () => number, index: number): CachedDocument {
  const docs: unknown[] = [];
  try {
    loadAll(text, (d) => docs.push(d));
  } catch (err) {
    // Only the reason and position: the exception's message quotes the line, which may hold a credential.
    const reason = err instanceof YAMLException ? err.reason : 'cannot parse';
    const mark = err instanceof YAMLException ? err.mark : undefined;
    const where = mark ? `line ${firstLine() + mark.line + 1}, column ${mark.column + 1}: ` : '';
    return { start, parsed: [], yamlIssues: [{ source: path, resource: 'YAML', field: '', message: `${where}${reason}` }] };
  }
  const parsed: ParsedDocument[] = [];
  for (const d of docs) {
    const p = parseDocument(path, d, index + parsed.length + 1);
    if (p) parsed.push(p);
  }
  return { start, parsed, yamlIssues: [] };
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
