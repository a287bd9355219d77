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
import { rowsToJson, type UsageBatch, type UsageSink, type UsageTotals } from './accountant.js';

const APPLY_SCRIPT = `
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then return 0 end
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
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[a + 1], '*', 'id', ARGV[3], 'rows', ARGV[a])
return 1
`;

interface ApplyClient {
  tollgateUsage(numKeys: number, ...args: (string | number)[]): Promise<number>;
}

/**
 * Bound of the batch stream (entries, one per flushed batch of up to --usage-flush-records records).
 * The ledger writer deletes what it has written, so the stream holds only what waits for
 * PostgreSQL; beyond the bound Redis trims the oldest (lost for the ledger, still counted in the
 * monthly hashes). tollgate_ledger_backlog_batches shows the length, and the writer warns at 80%.
 */
export const STREAM_MAX_BATCHES = 100_000;

/** The stream of flushed batches (read by the ledger writer). */
export function usageStreamKey(prefix: string): string {
  return `${prefix}{tollgate}:usage:batches`;
}

/** Batch markers and monthly hashes are kept this long (ms): a retried batch within it is refused. */
const RETAIN_MS = 400 * 86_400_000;

export class RedisUsageSink implements UsageSink {
  private readonly script: ApplyClient;
  private readonly base: string;

  constructor(
    private readonly client: RedisClient,
    prefix: string,
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
    args.push(rowsToJson(batch.rows), STREAM_MAX_BATCHES);
    const applied = await timed('usage_flush', () => this.script.tollgateUsage(keys.length, ...keys, ...args));
    return applied === 1 ? 'applied' : 'duplicate';
  }

  async monthToDate(key: string, month: string): Promise<UsageTotals> {
    const [requests, prompt, completion, cost] = await timed('usage_read', () =>
      this.client.hmget(this.monthKey(key, month), 'requests', 'prompt_tokens', 'completion_tokens', 'cost_picos'),
    );
    return { requests: Number(requests ?? 0), promptTokens: Number(prompt ?? 0), completionTokens: Number(completion ?? 0), costPicos: BigInt(cost ?? '0') };
  }
}
