/**
 * Usage accounting: one record per request, aggregated in memory and flushed in batches (every
 * `maxRecords` records or `intervalMs`), never one write per request. A batch carries an id; the
 * sink applies a batch id at most once, so a flush retried after a timeout never double counts.
 * While a flush fails the batch is kept (same id) and new records keep aggregating beside it, so an
 * outage loses nothing; memory is bounded by distinct (month, key, model, provider, status) rows,
 * not by request count. `stop()` flushes what is left (SIGTERM).
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from '../observability/logger.js';
import { addCost, tokensTotal, usageFlushesTotal, usagePendingRecords } from '../observability/metrics.js';

/** One finished request. */
export interface UsageRecord {
  /** ApiKey `namespace/name`. */
  readonly key: string;
  readonly lineage: string;
  /** The tenant of the request's Host (GatewayConfig spec.tenants), if any. */
  readonly tenant?: string;
  /** The PromptTemplate of a /v1/templates/<name> request, and its version label if it has one. */
  readonly template?: string;
  readonly templateVersion?: string;
  readonly model: string;
  readonly upstreamModel: string;
  readonly provider: string;
  readonly promptTokens: number;
  readonly completionTokens: number;
  /** Of the prompt: read from / written to the provider cache; of the completion: reasoning. */
  readonly cachedReadTokens?: number;
  readonly cachedWriteTokens?: number;
  readonly reasoningTokens?: number;
  /** Exact cost in picos (1e-12) of the gateway currency; 0 for an unpriced model. */
  readonly costPicos: bigint;
  readonly latencyMs: number;
  readonly status: number;
  /** `YYYY-MM` in the key's month time zone. */
  readonly month: string;
  /** Epoch ms when the request finished (rows are bucketed per UTC hour for reports). */
  readonly atMs: number;
  /** True when the tokens came from the upstream's `usage`, false when counted by the gateway. */
  readonly reported: boolean;
}

export const HOUR_MS = 3_600_000;

/** Aggregated usage of one (month, hour, key, tenant, template, model, provider, upstream model, status class). */
export interface UsageRow {
  readonly month: string;
  readonly key: string;
  readonly lineage: string;
  /** Tenant name; '' or absent when the request was on no tenant's host. */
  readonly tenant?: string;
  /** PromptTemplate name and version label; '' or absent when none. */
  readonly template?: string;
  readonly templateVersion?: string;
  readonly model: string;
  readonly upstreamModel: string;
  readonly provider: string;
  readonly statusClass: string;
  /** Epoch ms of the UTC hour the requests finished in. */
  readonly hour: number;
  requests: number;
  promptTokens: number;
  completionTokens: number;
  cachedReadTokens: number;
  cachedWriteTokens: number;
  reasoningTokens: number;
  /** Exact cost in picos of the gateway currency. */
  costPicos: bigint;
  latencyMs: number;
  /** Requests whose tokens were counted by the gateway (the upstream sent no usage). */
  estimated: number;
}

export interface UsageBatch {
  readonly id: string;
  readonly rows: readonly UsageRow[];
  readonly records: number;
}

/** Month-to-date totals of one key. */
export interface UsageTotals {
  readonly requests: number;
  readonly promptTokens: number;
  readonly completionTokens: number;
  readonly costPicos: bigint;
}

/** A row as JSON (the cost as a decimal string of picos: JSON has no 64-bit integers). */
export type UsageRowJson = Omit<UsageRow, 'costPicos'> & { readonly costPicos: string };

export function rowsToJson(rows: readonly UsageRow[]): string {
  return JSON.stringify(rows, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}

/** Parses rows written by rowsToJson; throws on anything else. */
export function rowsFromJson(text: string): UsageRow[] {
  const parsed = JSON.parse(text) as UsageRowJson[];
  if (!Array.isArray(parsed)) throw new Error('usage rows: not an array');
  return parsed.map((r) => ({
    ...r,
    cachedReadTokens: r.cachedReadTokens ?? 0,
    cachedWriteTokens: r.cachedWriteTokens ?? 0,
    reasoningTokens: r.reasoningTokens ?? 0,
    hour: r.hour ?? 0,
    costPicos: BigInt(r.costPicos ?? '0'),
  }));
}

/** Where batches go (Redis, or memory when no Redis is configured). */
export interface UsageSink {
  /** Applies a batch once; `duplicate` when this id was applied before. */
  apply(batch: UsageBatch): Promise<'applied' | 'duplicate'>;
  monthToDate(key: string, month: string): Promise<UsageTotals>;
}

export interface AccountantOptions {
  readonly sink: UsageSink;
  readonly logger: Logger;
  readonly maxRecords?: number;
  readonly intervalMs?: number;
  /** Distinct rows kept in memory at most; beyond it records still count, folded into an overflow row. */
  readonly maxRows?: number;
}

function statusClass(status: number): string {
  return status >= 100 && status < 600 ? `${Math.floor(status / 100)}xx` : 'other';
}

export class UsageAccountant {
  private rows = new Map<string, UsageRow>();
  private records = 0;
  private pending: UsageBatch | undefined;
  private flushing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly maxRecords: number;
  private readonly maxRows: number;

  constructor(private readonly options: AccountantOptions) {
    this.maxRecords = options.maxRecords ?? 500;
    this.maxRows = options.maxRows ?? 100_000;
  }

  start(): void {
    this.timer = setInterval(() => void this.flush(), this.options.intervalMs ?? 1000);
    this.timer.unref();
  }

  /** Records one request (synchronous, O(1)). */
  record(r: UsageRecord): void {
    tokensTotal.inc({ consumer: r.key, provider: r.provider, model: r.model, kind: 'prompt' }, r.promptTokens);
    tokensTotal.inc({ consumer: r.key, provider: r.provider, model: r.model, kind: 'completion' }, r.completionTokens);
    addCost(r.key, r.model, r.provider, r.costPicos);
    const sc = statusClass(r.status);
    const hour = r.atMs - (r.atMs % HOUR_MS);
    const tenant = r.tenant ?? '';
    const template = r.template ?? '';
    const templateVersion = r.templateVersion ?? '';
    let id = `${r.month}\u0000${hour}\u0000${r.key}\u0000${r.model}\u0000${r.provider}\u0000${r.upstreamModel}\u0000${sc}\u0000${tenant}\u0000${template}\u0000${templateVersion}`;
    let row = this.rows.get(id);
    const overflow = !row && this.rows.size >= this.maxRows;
    if (overflow) {
      id = `${r.month}\u0000${hour}\u0000${r.key}\u0000*\u0000*\u0000*\u0000${sc}\u0000*\u0000*\u0000*`;
      row = this.rows.get(id);
    }
    if (!row) {
      row = {
        month: r.month,
        key: r.key,
        lineage: r.lineage,
        tenant: overflow ? '*' : tenant,
        template: overflow ? '*' : template,
        templateVersion: overflow ? '*' : templateVersion,
        model: this.rows.size >= this.maxRows ? '*' : r.model,
        upstreamModel: this.rows.size >= this.maxRows ? '*' : r.upstreamModel,
        provider: this.rows.size >= this.maxRows ? '*' : r.provider,
        statusClass: sc,
        hour,
        requests: 0,
        promptTokens: 0,
        completionTokens: 0,
        cachedReadTokens: 0,
        cachedWriteTokens: 0,
        reasoningTokens: 0,
        costPicos: 0n,
        latencyMs: 0,
        estimated: 0,
      };
      this.rows.set(id, row);
    }
    row.requests += 1;
    row.promptTokens += r.promptTokens;
    row.completionTokens += r.completionTokens;
    row.cachedReadTokens += r.cachedReadTokens ?? 0;
    row.cachedWriteTokens += r.cachedWriteTokens ?? 0;
    row.reasoningTokens += r.reasoningTokens ?? 0;
    row.costPicos += r.costPicos;
    row.latencyMs += Math.round(r.latencyMs);
    if (!r.reported) row.estimated += 1;
    this.records += 1;
    usagePendingRecords.set(this.pendingRecords);
    if (this.records >= this.maxRecords) void this.flush();
  }

  /** Records not yet accepted by the sink. */
  get pendingRecords(): number {
    return this.records + (this.pending?.records ?? 0);
  }

  /** Flushes the pending batch (retry, same id) and then the current aggregate. Single flight. */
  flush(): Promise<void> {
    this.flushing ??= this.flushOnce().finally(() => (this.flushing = undefined));
    return this.flushing;
  }

  private async flushOnce(): Promise<void> {
    for (let round = 0; round < 2; round++) {
      if (!this.pending) {
        if (this.records === 0) return;
        this.pending = { id: randomUUID(), rows: [...this.rows.values()], records: this.records };
        this.rows = new Map();
        this.records = 0;
      }
      const batch = this.pending;
      try {
        const result = await this.options.sink.apply(batch);
        usageFlushesTotal.inc({ result: result === 'applied' ? 'ok' : 'duplicate' });
        this.pending = undefined;
      } catch (err) {
        usageFlushesTotal.inc({ result: 'error' });
        this.options.logger.warn({ err: err instanceof Error ? err.message : String(err), batch: batch.id, records: batch.records }, 'usage flush failed; keeping the batch for retry');
        return;
      } finally {
        usagePendingRecords.set(this.pendingRecords);
      }
    }
  }

  /** Month-to-date totals of a key: what the sink holds plus what is still in memory. */
  async monthToDate(key: string, month: string): Promise<UsageTotals> {
    const stored = await this.options.sink.monthToDate(key, month);
    let { requests, promptTokens, completionTokens, costPicos } = stored;
    const rows = [...this.rows.values(), ...(this.pending?.rows ?? [])];
    for (const r of rows) {
      if (r.key !== key || r.month !== month) continue;
      requests += r.requests;
      promptTokens += r.promptTokens;
      completionTokens += r.completionTokens;
      costPicos += r.costPicos;
    }
    return { requests, promptTokens, completionTokens, costPicos };
  }

  /** Stops the timer and flushes, retrying for up to `timeoutMs`. */
  async stop(timeoutMs = 5000): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      await this.flush();
      if (this.pendingRecords === 0) return;
      if (Date.now() > deadline) {
        this.options.logger.error({ records: this.pendingRecords }, 'usage records could not be flushed before exit');
        return;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** The sink without Redis: totals in process memory (one replica; lost on restart, documented). */
export class MemoryUsageSink implements UsageSink {
  private readonly applied = new Set<string>();
  private readonly totals = new Map<string, { requests: number; promptTokens: number; completionTokens: number; costPicos: bigint }>();

  apply(batch: UsageBatch): Promise<'applied' | 'duplicate'> {
    if (this.applied.has(batch.id)) return Promise.resolve('duplicate');
    if (this.applied.size > 10_000) this.applied.clear();
    this.applied.add(batch.id);
    for (const r of batch.rows) {
      const id = `${r.month}\u0000${r.key}`;
      const t = this.totals.get(id) ?? { requests: 0, promptTokens: 0, completionTokens: 0, costPicos: 0n };
      t.requests += r.requests;
      t.promptTokens += r.promptTokens;
      t.completionTokens += r.completionTokens;
      t.costPicos += r.costPicos;
      this.totals.set(id, t);
    }
    return Promise.resolve('applied');
  }

  monthToDate(key: string, month: string): Promise<UsageTotals> {
    return Promise.resolve(this.totals.get(`${month}\u0000${key}`) ?? { requests: 0, promptTokens: 0, completionTokens: 0, costPicos: 0n });
  }
}
