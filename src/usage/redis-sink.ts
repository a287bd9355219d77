/**
 * Usage batches into Redis: one EVALSHA per batch applies every row's increments and appends the
 * batch to a Redis stream (for a durable store to consume), guarded by a per-batch marker key
 * (`SET NX`) so a retried batch id is a no-op. Layout (all keys share the `{tollgate}` hash tag):
 *   <prefix>{tollgate}:usage:<YYYY-MM>:<namespace/name>   hash: requests, prompt_tokens,
 *       completion_tokens, cost_picos (int64: up to ~9.2M currency units per key and month),
 *       latency_ms, estimated, and the same per `model:<model>:...`
 *   <prefix>{tollgate}:usage:batches                       stream: id, rows (JSON)
 */
import { timed, type RedisClient } from '../ratelimit/redis.js';
import type { Logger } from '../observability/logger.js';
import { ledgerBacklogBatches, ledgerDroppedBatchesTotal, ledgerDroppedRecordsTotal } from '../observability/metrics.js';
import { rowsToJson, type UsageBatch, type UsageSink, type UsageTotals } from './accountant.js';

const APPLY_SCRIPT = `
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then return {0, 0, 0} end
local a = 4
for i = 3, #KEYS do
  local n = tonumber(ARGV[a])
  a = a + 1
  for j = 1, n do
    redis.call('HINCRBY', KEYS[i], ARGV[a], ARGV[a + 1])
    a = a + 2
  end
  redis.call('PEXPIRE', KEYS[i], ARGV[2])
end
local max = tonumber(ARGV[a + 1])
if ARGV[a + 2] == 'ring' then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', max, '*', 'id', ARGV[3], 'rows', ARGV[a])
  return {1, 1, redis.call('XLEN', KEYS[2])}
end
local len = redis.call('XLEN', KEYS[2])
if len >= max then return {1, 0, len} end
redis.call('XADD', KEYS[2], '*', 'id', ARGV[3], 'rows', ARGV[a])
return {1, 1, len + 1}
`;

interface ApplyClient {
  /** [applied 0|1, queued for the ledger 0|1, stream length after]. */
  tollgateUsage(numKeys: number, ...args: (string | number)[]): Promise<[number, number, number]>;
}

/**
 * Default bound of the batch stream (entries, one per flushed batch of up to --usage-flush-records
 * records; --ledger-backlog-max-batches). The ledger writer deletes what it has written, so the
 * stream holds only what waits for PostgreSQL. With a ledger configured, a batch that finds the
 * stream at its bound is not queued (its usage still counts in the monthly hashes, budgets and
 * ApiKey status) and is counted in tollgate_ledger_dropped_{batches,records}_total; without a
 * ledger nothing reads the stream and Redis trims the oldest (a ring of recent batches).
 */
export const STREAM_MAX_BATCHES = 100_000;

/** From this share of the bound on, the backlog is logged as near its bound (once per crossing). */
export const BACKLOG_WARN_RATIO = 0.8;

/** Ledger mode of the sink: the stream is bounded, full means refused and counted. */
export interface LedgerBacklogOptions {
  readonly maxBatches: number;
  readonly logger: Logger;
  /** Least time between two "dropped" error logs (the counters count every drop). Default 60 s. */
  readonly dropLogIntervalMs?: number;
}

/** The stream of flushed batches (read by the ledger writer). */
export function usageStreamKey(prefix: string): string {
  return `${prefix}{tollgate}:usage:batches`;
}

/** Batch markers and monthly hashes are kept this long (ms): a retried batch within it is refused. */
const RETAIN_MS = 400 * 86_400_000;

export class RedisUsageSink implements UsageSink {
  private readonly script: ApplyClient;
  private readonly base: string;

  private nearBound = false;
  private lastDropLog = 0;
  private droppedBatches = 0;
  private droppedRecords = 0;

  /** `ledger`: set when this gateway runs with a ledger (--ledger-url); else the stream is a ring. */
  constructor(
    private readonly client: RedisClient,
    prefix: string,
    private readonly ledger?: LedgerBacklogOptions,
  ) {
    client.defineCommand('tollgateUsage', { lua: APPLY_SCRIPT });
    this.script = client as unknown as ApplyClient;
    this.base = `${prefix}{tollgate}:usage:`;
  }

  monthKey(key: string, month: string): string {
    return `${this.base}${month}:${key}`;
  }

  async apply(batch: UsageBatch): Promise<'applied' | 'duplicate'> {
    const byHash = new Map<string, [string, number | string][]>();
    for (const r of batch.rows) {
      const hash = this.monthKey(r.key, r.month);
      let fields = byHash.get(hash);
      if (!fields) byHash.set(hash, (fields = []));
      const m = `model:${r.model}:`;
      fields.push(
        ['requests', r.requests],
        ['prompt_tokens', r.promptTokens],
        ['completion_tokens', r.completionTokens],
        ['cost_picos', r.costPicos.toString()],
        ['latency_ms', r.latencyMs],
        ['estimated', r.estimated],
        [`status:${r.statusClass}`, r.requests],
        [m + 'requests', r.requests],
        [m + 'prompt_tokens', r.promptTokens],
        [m + 'completion_tokens', r.completionTokens],
        [m + 'cost_picos', r.costPicos.toString()],
      );
    }
    const keys = [`${this.base}batch:${batch.id}`, `${this.base}batches`, ...byHash.keys()];
    const args: (string | number)[] = [RETAIN_MS, RETAIN_MS, batch.id];
    for (const fields of byHash.values()) {
      args.push(fields.length);
      for (const [f, v] of fields) args.push(f, v);
    }
    args.push(rowsToJson(batch.rows), this.ledger?.maxBatches ?? STREAM_MAX_BATCHES, this.ledger ? 'ledger' : 'ring');
    const [applied, queued, length] = await timed('usage_flush', () => this.script.tollgateUsage(keys.length, ...keys, ...args));
    if (applied !== 1) return 'duplicate';
    if (this.ledger) this.backlog(batch, queued === 1, Number(length), this.ledger);
    return 'applied';
  }

  /** The backlog gauge, the warning near the bound and the count (and a rate-limited error) of drops. */
  private backlog(batch: UsageBatch, queued: boolean, length: number, ledger: LedgerBacklogOptions): void {
    ledgerBacklogBatches.set(length);
    const bound = ledger.maxBatches;
    if (length >= bound * BACKLOG_WARN_RATIO) {
      if (!this.nearBound) {
        ledger.logger.warn(
          { backlog: length, bound },
          'usage ledger backlog near its bound: PostgreSQL is down or the ledger writer is not keeping up; at the bound new batches are not queued for the ledger (counted in tollgate_ledger_dropped_records_total)',
        );
      }
      this.nearBound = true;
    } else if (length < bound * (BACKLOG_WARN_RATIO - 0.1)) this.nearBound = false;
    if (queued) return;
    ledgerDroppedBatchesTotal.inc();
    ledgerDroppedRecordsTotal.inc(batch.records);
    this.droppedBatches += 1;
    this.droppedRecords += batch.records;
    const now = Date.now();
    if (now - this.lastDropLog < (ledger.dropLogIntervalMs ?? 60_000)) return;
    ledger.logger.error(
      { backlog: length, bound, droppedBatches: this.droppedBatches, droppedRecords: this.droppedRecords },
      'usage ledger backlog full: batches are not queued for the PostgreSQL ledger (their usage still counts in month-to-date totals and budgets); counted in tollgate_ledger_dropped_records_total',
    );
    this.lastDropLog = now;
    this.droppedBatches = 0;
    this.droppedRecords = 0;
  }

  async monthToDate(key: string, month: string): Promise<UsageTotals> {
    const [requests, prompt, completion, cost] = await timed('usage_read', () =>
      this.client.hmget(this.monthKey(key, month), 'requests', 'prompt_tokens', 'completion_tokens', 'cost_picos'),
    );
    return { requests: Number(requests ?? 0), promptTokens: Number(prompt ?? 0), completionTokens: Number(completion ?? 0), costPicos: BigInt(cost ?? '0') };
  }
}
