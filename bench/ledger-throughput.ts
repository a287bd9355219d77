/**
 * Usage ledger throughput: how many usage records per second the one ledger writer moves from the
 * Redis stream into PostgreSQL on this machine (real redis-server and PostgreSQL from the test
 * harness). Worst case for the ledger: every record is its own row (a distinct key x model per
 * request, nothing aggregated in memory).
 *
 *   npm run build && node dist/bench/ledger-throughput.js [--batches=200] [--rows=500] [--entries=200]
 *
 * Fills the stream with `batches` flushed batches of `rows` rows (as gateways would, one EVALSHA
 * each), then times one writer draining it (`entries` stream entries per PostgreSQL transaction).
 * Seconds of one core; never timed in tests.
 */
import { parseArgs } from 'node:util';
import { RedisLockElection } from '../src/ledger/election.js';
import { LedgerWriter } from '../src/ledger/writer.js';
import { createLogger } from '../src/observability/logger.js';
import { createRedisClient, whenReady } from '../src/ratelimit/redis.js';
import type { UsageRow } from '../src/usage/accountant.js';
import { RedisUsageSink } from '../src/usage/redis-sink.js';
import { startPostgres } from '../test/harness/postgres.js';
import { startRedis } from '../test/harness/redis.js';

const { values } = parseArgs({ options: { batches: { type: 'string' }, rows: { type: 'string' }, entries: { type: 'string' } } });
const batches = Number(values.batches ?? 200);
const rowsPer = Number(values.rows ?? 500);
const entries = Number(values.entries ?? 200);

const redis = await startRedis();
const pg = await startPostgres();
try {
  const client = createRedisClient({ url: redis.url, mode: 'standalone', commandTimeoutMs: 30_000, prefix: '' });
  await whenReady(client, 5000);
  const sink = new RedisUsageSink(client, 'bench:');
  const hour = Date.now() - (Date.now() % 3_600_000);
  const month = new Date().toISOString().slice(0, 7);
  for (let b = 0; b < batches; b++) {
    const rows: UsageRow[] = Array.from({ length: rowsPer }, (_, i) => ({
      month, key: `default/key-${(b * rowsPer + i) % 5000}`, lineage: '.org.team.', model: `model-${i % 20}`, upstreamModel: 'up', provider: 'default/p',
      statusClass: '2xx', hour, requests: 1, promptTokens: 100 + i, completionTokens: 50, cachedReadTokens: 0, cachedWriteTokens: 0, reasoningTokens: 0,
      costPicos: 123_456_789n, latencyMs: 200, estimated: 0,
    }));
    await sink.apply({ id: `bench-${b}`, rows, records: rowsPer });
  }
  const total = batches * rowsPer;
  const logger = createLogger('bench', { write: () => undefined } as never);
  let written = 0;
  let done: () => void = () => undefined;
  const finished = new Promise<void>((r) => (done = r));
  const writer = new LedgerWriter({
    pool: pg.pool, redis: client, prefix: 'bench:', logger, election: new RedisLockElection(client, 'bench:'), currency: () => 'USD', entriesPerWrite: entries,
    afterCommit: (n) => {
      written += n;
      if (written >= total) done();
    },
  });
  const started = performance.now();
  writer.start();
  await finished;
  const seconds = (performance.now() - started) / 1000;
  await writer.stop();
  const inDb = (await pg.pool.query<{ n: string }>('SELECT sum(requests) AS n FROM tollgate_usage')).rows[0]?.n;
  process.stdout.write(
    `ledger: ${total} records (${batches} batches x ${rowsPer} rows, ${entries} batches per transaction) in ${seconds.toFixed(2)} s = ${Math.round(total / seconds)} records/s; in PostgreSQL: ${inDb}\n`,
  );
  client.disconnect();
} finally {
  await pg.stop();
  await redis.stop();
}
