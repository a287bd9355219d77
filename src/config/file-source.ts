/**
 * File config source: a directory of Kubernetes-style YAML (ModelProvider, ApiKey, Secret,
 * GatewayConfig). Reloads on change; a change that fails validation is reported with file,
 * resource and field, and the last good snapshot stays in force.
 */
import { createHash } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LineCounter, parseAllDocuments } from 'yaml';
import type { Logger } from '../observability/logger.js';
import { configReloadsTotal } from '../observability/metrics.js';
import { formatIssue, parseResources, type ConfigIssue, type SourcedDocument } from './parse.js';
import { buildSnapshot } from './snapshot.js';
import type { ConfigStore } from './store.js';

export interface FileSourceOptions {
  readonly directory: string;
  readonly store: ConfigStore;
  readonly logger: Logger;
  /** Delay that merges a burst of file events into one reload. */
  readonly debounceMs?: number;
  /** Safety-net poll (fs events can be missed on some mounts); 0 disables. */
  readonly pollMs?: number;
}

/** Outcome of one load, for tests and logs. */
export type LoadOutcome =
  | { readonly kind: 'applied'; readonly version: number }
  | { readonly kind: 'unchanged' }
  | { readonly kind: 'rejected'; readonly issues: readonly string[] };

export class FileConfigSource {
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private poller: NodeJS.Timeout | undefined;
  private fingerprint = '';
  private version = 0;
  private loading: Promise<LoadOutcome> | undefined;
  private reloadQueued = false;

  constructor(private readonly options: FileSourceOptions) {}

  /** Loads once and starts watching. Rejects if the first load is invalid (nothing to fall back to). */
  async start(): Promise<void> {
    const first = await this.reload();
    if (first.kind === 'rejected') {
      throw new Error(`invalid config in ${this.options.directory}:\n  ${first.issues.join('\n  ')}`);
    }
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

  /** Reads the directory and applies it if it changed and is valid. Serialised: never two at once. */
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
    let files: { path: string; text: string }[];
    try {
      files = await readConfigFiles(directory);
    } catch (err) {
      logger.error({ err, directory }, 'cannot read config directory; keeping the config in force');
      return { kind: 'rejected', issues: [String(err)] };
    }
    const fingerprint = createHash('sha256')
      .update(files.map((f) => f.path + '\0' + f.text).join('\0'))
      .digest('hex');
    if (fingerprint === this.fingerprint) return { kind: 'unchanged' };

    const { documents, issues } = parseYaml(files);
    const parsed = parseResources(documents);
    const allIssues: ConfigIssue[] = [...issues, ...parsed.issues];
    const { snapshot, problems } = buildSnapshot(parsed.resources, this.version + 1);
    for (const p of problems) {
      const resource = `${p.kind} ${p.name}`;
      allIssues.push({ source: parsed.origins.get(resource) ?? directory, resource, field: p.field ?? '', message: `${p.reason}: ${p.message}` });
    }
    if (allIssues.length > 0) {
      const lines = allIssues.map(formatIssue);
      // Remember the bad fingerprint so the poller does not log the same rejection every tick.
      this.fingerprint = fingerprint;
      configReloadsTotal.inc({ result: 'rejected' });
      logger.error({ issues: lines, keptVersion: store.current()?.version }, 'config rejected; keeping the last good config');
      return { kind: 'rejected', issues: lines };
    }
    this.fingerprint = fingerprint;
    this.version += 1;
    store.swap(snapshot);
    configReloadsTotal.inc({ result: 'applied' });
    logger.info(
      { version: snapshot.version, keys: snapshot.keysByHash.size, models: snapshot.servedModels.length },
      'config applied',
    );
    return { kind: 'applied', version: snapshot.version };
  }
}

async function readConfigFiles(directory: string): Promise<{ path: string; text: string }[]> {
  const names = (await readdir(directory)).filter((n) => /\.(ya?ml|json)$/.test(n) && !n.startsWith('.')).sort();
  return Promise.all(names.map(async (n) => ({ path: join(directory, n), text: await readFile(join(directory, n), 'utf8') })));
}

function parseYaml(files: readonly { path: string; text: string }[]): { documents: SourcedDocument[]; issues: ConfigIssue[] } {
  const documents: SourcedDocument[] = [];
  const issues: ConfigIssue[] = [];
  for (const f of files) {
    // prettyErrors off: the pretty form quotes the offending line, which may hold a credential.
    const lines = new LineCounter();
    for (const doc of parseAllDocuments(f.text, { prettyErrors: false, lineCounter: lines })) {
      if (doc.errors.length > 0) {
        for (const e of doc.errors) {
          const { line, col } = lines.linePos(e.pos[0]);
          issues.push({ source: f.path, resource: 'YAML', field: '', message: `line ${line}, column ${col}: ${e.message}` });
        }
        continue;
      }
      documents.push({ source: f.path, doc: doc.toJS() });
    }
  }
  return { documents, issues };
}
