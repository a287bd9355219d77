/**
 * The usage ledger writer: Redis stream -> PostgreSQL, in batches, by one writer at a time.
 *
 * Path of a record: gateway memory (usage/accountant.ts aggregates requests into rows) -> one
 * EVALSHA per flush appends the batch to a Redis stream (usage/redis-sink.ts; survives a gateway
 * crash) -> this writer, on the elected replica only, reads entries through a consumer group and
 * writes many batches in ONE PostgreSQL transaction: the batch ids into tollgate_ledger_batches
 * (ON CONFLICT DO NOTHING, so a batch already written is recognised) and the rows of the new ones
 * with one multi-row INSERT (unnest of arrays, ON CONFLICT DO NOTHING). That INSERT also updates
 * the hourly rollup the reports read (tollgate_usage_hourly, migration 3): its statement trigger sums
 * exactly the rows the INSERT inserted, in the same transaction, so a replayed batch, whose rows
 * ON CONFLICT skips, is not counted twice there either. Only after COMMIT are the
 * entries acknowledged and deleted from the stream. Hence:
 *  - PostgreSQL down: nothing is acknowledged; entries wait in the stream (bounded by
 *    --ledger-backlog-max-batches; the backlog gauge shows it, a warning is logged from 80%, and
 *    at the bound the gateways stop queueing new batches and count them, usage/redis-sink.ts),
 *    and are written when it is back;
 *  - the writer killed between COMMIT and XACK: the entries are read again (pending) and their
 *    batch ids are already in tollgate_ledger_batches, so nothing is written twice.
 */
import type pg from 'pg';
import type { Logger } from '../observability/logger.js';
import { ledgerBacklogBatches, ledgerRecordsTotal, ledgerWritesTotal } from '../observability/metrics.js';
import type { RedisClient } from '../ratelimit/redis.js';
import { rowsFromJson, type UsageRow } from '../usage/accountant.js';
import { writeSync } from 'node:fs';
import { BACKLOG_WARN_RATIO, STREAM_MAX_BATCHES, usageStreamKey } from '../usage/redis-sink.js';
import type { WriterElection } from './election.js';
import { ensurePartition, migrate } from './migrations.js';

export interface LedgerWriterOptions {
  readonly pool: pg.Pool;
  readonly redis: RedisClient;
  readonly prefix: string;
  readonly logger: Logger;
  readonly election: WriterElection;
  /** Currency written with the rows (the gateway currency of the snapshot in force). */
  readonly currency: () => string;
  /** Stream entries (flushed batches, up to --usage-flush-records rows each) per PostgreSQL transaction; default 20. */
  readonly entriesPerWrite?: number;
  /** Pause when the stream is empty or this replica is not the writer. */
  readonly idleMs?: number;
  /** Longest pause between retries while PostgreSQL fails. */
  readonly maxBackoffMs?: number;
  /** The stream's bound the backlog warning is relative to (--ledger-backlog-max-batches; default STREAM_MAX_BATCHES). */
  readonly backlogBound?: number;
  /** How often the backlog (stream length) is read for the gauge and the warning; default 5 s. */
  readonly backlogCheckMs?: number;
  /**
   * TEST HOOK, never set in production: `sigkill` makes this process SIGKILL itself right after
   * the first COMMIT, before the entries are acknowledged (env TOLLGATE_TEST_LEDGER_SIGKILL_AFTER_COMMIT=1,
   * read by ledger/setup.ts). test/integration/ledger.test.ts uses it to kill a real gateway at
   * exactly that point and prove the next writer neither loses nor duplicates a record.
   */
  readonly faultAfterCommit?: 'sigkill';
  /**
   * Called after COMMIT, before the entries are acknowledged. A throw leaves them unacknowledged,
   * exactly like a writer killed at that moment (tests use it to replay a committed batch).
   */
  readonly afterCommit?: (records: number) => void | Promise<void>;
}

const GROUP = 'ledger';
/** One consumer name: only the elected writer reads, and a new writer inherits its pending entries. */
const CONSUMER = 'writer';

type StreamEntry = [id: string, fields: string[]];

interface Parsed {
  readonly streamId: string;
  readonly batchId: string;
  readonly rows: UsageRow[];
  readonly records: number;
}

/**
 * The test hook's crash: one line straight to stderr (synchronously, so it is in the log), then a
 * real SIGKILL of this process; nothing after COMMIT runs, exactly as if the pod were killed there.
 */
function killSelf(batchIds: readonly string[]): Promise<never> {
  writeSync(2, `${JSON.stringify({ msg: 'ledger test hook: SIGKILL after COMMIT, before XACK', pid: process.pid, batchIds })}\n`);
  process.kill(process.pid, 'SIGKILL');
  return new Promise<never>(() => undefined); // the signal is already on its way; never continue
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

export class LedgerWriter {
  private readonly key: string;
  private stopped = false;
  private loop: Promise<void> | undefined;
  private migrated = false;
  private groupReady = false;
  private readonly partitions = new Set<string>();
  private lastBacklogCheck = 0;
  private warnedBacklog = false;
  private failing = false;

  constructor(private readonly options: LedgerWriterOptions) {
    this.key = usageStreamKey(options.prefix);
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** Stops after the current write (never in the middle of one) and gives the writer role up. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    await this.options.election.release();
  }

  private async run(): Promise<void> {
    const idle = this.options.idleMs ?? 200;
    let backoff = idle;
    while (!this.stopped) {
      try {
        if (!(await this.options.election.leading())) {
          this.groupReady = false;
          await sleep(1000);
          continue;
        }
        await this.prepare();
        await this.checkBacklog();
        const written = await this.writeOnce();
        if (this.failing) {
          this.failing = false;
          this.options.logger.info('usage ledger: PostgreSQL writes work again');
        }
        backoff = idle;
        if (written === 0) await sleep(idle);
      } catch (err) {
        ledgerWritesTotal.inc({ result: 'error' });
        if (!this.failing) this.options.logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'usage ledger write failed; records wait in Redis and are retried');
        this.failing = true;
        await sleep(backoff);
        backoff = Math.min(this.options.maxBackoffMs ?? 5000, backoff * 2);
      }
    }
  }

  /** Migrations (once per process), the consumer group, this month's and next month's partitions. */
  private async prepare(): Promise<void> {
    if (!this.migrated) {
      const applied = await migrate(this.options.pool);
      if (applied.length > 0) this.options.logger.info({ versions: applied }, 'usage ledger: migrations applied');
      this.migrated = true;
      const now = Date.now();
      await this.partition(now);
      await this.partition(now + 31 * 86_400_000);
    }
    if (!this.groupReady) {
      try {
        await this.options.redis.xgroup('CREATE', this.key, GROUP, '0', 'MKSTREAM');
      } catch (err) {
        if (!(err instanceof Error && err.message.includes('BUSYGROUP'))) throw err;
      }
      this.groupReady = true;
    }
  }

  private async partition(ms: number): Promise<void> {
    const d = new Date(ms);
    const id = `${d.getUTCFullYear()}-${d.getUTCMonth()}`;
    if (this.partitions.has(id)) return;
    await ensurePartition(this.options.pool, ms);
    this.partitions.add(id);
  }

  private async checkBacklog(): Promise<void> {
    const now = Date.now();
    if (now - this.lastBacklogCheck < (this.options.backlogCheckMs ?? 5000)) return;
    this.lastBacklogCheck = now;
    const length = await this.options.redis.xlen(this.key);
    ledgerBacklogBatches.set(length);
    const bound = this.options.backlogBound ?? STREAM_MAX_BATCHES;
    if (length >= bound * BACKLOG_WARN_RATIO) {
      if (!this.warnedBacklog) {
        this.options.logger.warn(
          { backlog: length, bound },
          'usage ledger backlog near its bound: PostgreSQL is down or the ledger writer is not keeping up; at the bound new batches are not queued for the ledger (counted in tollgate_ledger_dropped_records_total)',
        );
      }
      this.warnedBacklog = true;
    } else if (length < bound * (BACKLOG_WARN_RATIO - 0.1)) this.warnedBacklog = false;
  }

  /** Reads pending entries first (a previous writer's, or ours after a failure), then new ones. */
  private async read(): Promise<StreamEntry[]> {
    const count = this.options.entriesPerWrite ?? 20;
    for (const from of ['0', '>']) {
      const reply = (await this.options.redis.xreadgroup('GROUP', GROUP, CONSUMER, 'COUNT', count, 'STREAMS', this.key, from)) as
        | [string, StreamEntry[]][]
        | null;
      const entries = reply?.[0]?.[1] ?? [];
      // Pending entries whose data was trimmed come back as [id, null]: nothing to write, ack them.
      if (entries.length > 0) return entries;
    }
    return [];
  }

  /** One PostgreSQL transaction for up to entriesPerWrite batches; returns the records written. */
  async writeOnce(): Promise<number> {
    const entries = await this.read();
    if (entries.length === 0) return 0;
    const parsed: Parsed[] = [];
    const ids: string[] = [];
    for (const [streamId, fields] of entries) {
      ids.push(streamId);
      if (!fields) continue;
      const f = new Map<string, string>();
      for (let i = 0; i + 1 < fields.length; i += 2) f.set(fields[i] as string, fields[i + 1] as string);
      const batchId = f.get('id');
      const rows = f.get('rows');
      if (!batchId || rows === undefined) continue;
      try {
        const parsedRows = rowsFromJson(rows);
        parsed.push({ streamId, batchId, rows: parsedRows, records: parsedRows.reduce((n, r) => n + r.requests, 0) });
      } catch (err) {
        this.options.logger.error({ streamId, batchId, err: err instanceof Error ? err.message : String(err) }, 'usage ledger: unreadable batch skipped');
      }
    }
    for (const p of parsed) for (const r of p.rows) await this.partition(r.hour);
    const written = await this.insert(parsed);
    if (this.options.faultAfterCommit === 'sigkill' && parsed.length > 0) await killSelf(parsed.map((p) => p.batchId));
    await this.options.afterCommit?.(written);
    // Acknowledged (and removed) only after COMMIT.
    await this.options.redis.xack(this.key, GROUP, ...ids);
    await this.options.redis.xdel(this.key, ...ids);
    ledgerWritesTotal.inc({ result: 'ok' });
    ledgerRecordsTotal.inc(written);
    return Math.max(1, written);
  }

  private async insert(batches: readonly Parsed[]): Promise<number> {
    if (batches.length === 0) return 0;
    const client = await this.options.pool.connect();
    // A checked-out client has no 'error' listener (the pool removes its own): a connection reset
    // between two statements would be an uncaught exception that ends the gateway. The statement
    // in flight, or the next one, fails and the transaction is retried.
    const onError = (err: Error): void => this.options.logger.debug({ err: err.message }, 'ledger connection error during a write');
    client.on('error', onError);
    try {
      await client.query('BEGIN');
      const fresh = await client.query<{ batch_id: string }>(
        'INSERT INTO tollgate_ledger_batches (batch_id, records) SELECT * FROM unnest($1::text[], $2::int[]) ON CONFLICT DO NOTHING RETURNING batch_id',
        [batches.map((b) => b.batchId), batches.map((b) => b.records)],
      );
      const isNew = new Set(fresh.rows.map((r) => r.batch_id));
      const cols: unknown[][] = Array.from({ length: 23 }, () => []);
      const currency = this.options.currency();
      let records = 0;
      for (const b of batches) {
        if (!isNew.has(b.batchId)) continue;
        isNew.delete(b.batchId); // the same id twice in one read counts once
        records += b.records;
        b.rows.forEach((r, i) => {
          const values = [
            b.batchId, i, new Date(r.hour).toISOString(), r.month, r.key, r.lineage, r.model, r.upstreamModel, r.provider, r.statusClass,
            r.requests, r.promptTokens, r.completionTokens, r.cachedReadTokens, r.cachedWriteTokens, r.reasoningTokens,
            r.costPicos.toString(), currency, r.latencyMs, r.estimated, r.tenant ?? '', r.template ?? '', r.templateVersion ?? '',
          ];
          values.forEach((v, c) => (cols[c] as unknown[]).push(v));
        });
      }
      if ((cols[0] as unknown[]).length > 0) {
        await client.query(
          `INSERT INTO tollgate_usage (batch_id, row_no, hour, billing_month, api_key, lineage, model, upstream_model, provider, status_class,
             requests, prompt_tokens, completion_tokens, cached_read_tokens, cached_write_tokens, reasoning_tokens, cost_picos, currency, latency_ms, estimated,
             tenant, template, template_version)
           SELECT * FROM unnest($1::text[], $2::int[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],
             $11::bigint[], $12::bigint[], $13::bigint[], $14::bigint[], $15::bigint[], $16::bigint[], $17::numeric[], $18::text[], $19::bigint[], $20::bigint[],
             $21::text[], $22::text[], $23::text[])
           ON CONFLICT DO NOTHING`,
          cols,
        );
      }
      await client.query('COMMIT');
      return records;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.removeListener('error', onError);
      client.release();
    }
  }
}
