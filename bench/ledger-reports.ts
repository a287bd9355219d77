/**
 * Usage report latency at scale: loads a month of N usage rows (default 10,000,000) into a temp
 * PostgreSQL from the test harness and times the report queries of GET /admin/usage (the same SQL:
 * parseReportQuery -> runReport), printing each query's time and plan. Never timed in tests.
 *
 *   npx tsc -p tsconfig.json && nice -n 19 node dist/bench/ledger-reports.js [--rows=10000000] [--runs=3] [--explain]
 *
 * Data: 10 orgs x 10 teams x 100 keys (10,000 keys, lineage `.org-3.team-37.key-3742.`), 8 models,
 * 3 providers, rows spread over every hour of the current UTC month in time order (keys interleaved,
 * as the writer appends them), so one key's rows are scattered over the whole partition like in
 * production. Loading: the month's partition is filled as a plain table with one
 * INSERT ... SELECT FROM generate_series (no index maintenance per row), then ATTACHed, which builds
 * the primary key and the report indexes once, then ANALYZEd. Each step's time is printed.
 *
 * Queries (the month, as an operator would ask them):
 *   one key by model and day; one key in total; a team (1% of rows) by day; a team by key;
 *   an org (10% of rows) by month; everything by day; everything by key (first page of 1000).
 */
import { parseArgs } from 'node:util';
import pg from 'pg';
import { ensurePartition, migrate, partitionName } from '../src/ledger/migrations.js';
import { ledgerPoolConfig } from '../src/ledger/setup.js';
import { buildReportSql, parseReportQuery, runReport } from '../src/ledger/reports.js';
import { startPostgres } from '../test/harness/postgres.js';

const { values } = parseArgs({ options: { rows: { type: 'string' }, runs: { type: 'string' }, explain: { type: 'boolean' } } });
const rows = Number(values.rows ?? 10_000_000);
const runs = Number(values.runs ?? 3);
const KEYS = 10_000;

const now = new Date();
const y = now.getUTCFullYear();
const m = now.getUTCMonth();
const monthStart = Date.UTC(y, m, 1);
const monthEnd = Date.UTC(y, m + 1, 1);
const hours = Math.round((monthEnd - monthStart) / 3_600_000);
const month = new Date(monthStart).toISOString().slice(0, 7);

const pg0 = await startPostgres();
const db = pg0.pool;
const t = async (label: string, sql: string): Promise<number> => {
  const started = performance.now();
  await db.query(sql);
  const s = (performance.now() - started) / 1000;
  process.stdout.write(`  ${label}: ${s.toFixed(1)} s\n`);
  return s;
};
try {
  await migrate(db);
  const part = partitionName(y, m + 1);
  process.stdout.write(`loading ${rows.toLocaleString('en')} rows into ${part} (${KEYS} keys, ${hours} hours)\n`);
  // Gentle on a shared machine: one parallel worker for the index builds.
  await db.query("ALTER SYSTEM SET maintenance_work_mem = '512MB'");
  await db.query('ALTER SYSTEM SET max_parallel_maintenance_workers = 1');
  await db.query('SELECT pg_reload_conf()');
  let load = 0;
  load += await t('create table', `CREATE TABLE ${part} (LIKE tollgate_usage INCLUDING DEFAULTS)`);
  // g: key = g % KEYS (fastest), time = g / KEYS spread over the month's hours.
  load += await t(
    'insert (generate_series)',
    `INSERT INTO ${part}
       SELECT 'b' || (g / 500), (g % 500)::int,
              to_timestamp(${monthStart / 1000}) + make_interval(hours => ((g::bigint * ${hours}) / ${rows})::int),
              '${month}', 'default/key-' || (g % ${KEYS}),
              '.org-' || (g % ${KEYS}) / 1000 || '.team-' || (g % ${KEYS}) / 100 || '.key-' || (g % ${KEYS}) || '.',
              'model-' || ((g / ${KEYS}) % 8), 'up-' || ((g / ${KEYS}) % 8), 'default/provider-' || (g % 3),
              CASE WHEN g % 50 = 0 THEN '5xx' ELSE '2xx' END,
              1 + g % 5, 100 + g % 900, 10 + g % 300, g % 40, 0, g % 7,
              (g % 1000) * 1000000 + 12345, 'USD', 200 + g % 800, 0
       FROM generate_series(0, ${rows - 1}) AS g`,
  );
  load += await t(
    'attach partition (builds the primary key and report indexes)',
    `ALTER TABLE tollgate_usage ATTACH PARTITION ${part} FOR VALUES FROM ('${new Date(monthStart).toISOString()}') TO ('${new Date(monthEnd).toISOString()}')`,
  );
  load += await t('analyze', `ANALYZE ${part}`);
  await ensurePartition(db, monthStart); // already there: a no-op, as the writer would do
  const size = (await db.query<{ table: string; indexes: string }>(
    `SELECT pg_size_pretty(pg_table_size('${part}')) AS table, pg_size_pretty(pg_indexes_size('${part}')) AS indexes`,
  )).rows[0];
  process.stdout.write(`loaded in ${load.toFixed(1)} s; table ${size?.table}, indexes ${size?.indexes}\n\n`);

  // Queries through a pool configured as the gateway's ledger pool (src/ledger/setup.ts).
  const reports = new pg.Pool(ledgerPoolConfig(pg0.url));
  reports.on('error', () => undefined);
  const range = `from=${new Date(monthStart).toISOString()}&to=${new Date(monthEnd).toISOString()}`;
  const queries: [string, string][] = [
    ['one key, by model and day', `${range}&key=default/key-4242&groupBy=model&period=day`],
    ['one key, month total', `${range}&key=default/key-4242&groupBy=key`],
    ['team subtree (1%), by day', `${range}&lineage=.org-3.team-37.&groupBy=&period=day`],
    ['team subtree (1%), by key', `${range}&lineage=.org-3.team-37.&groupBy=key`],
    ['org subtree (10%), by model, month', `${range}&lineage=.org-3.&groupBy=model&period=month`],
    ['everything, by day', `${range}&groupBy=&period=day`],
    ['everything, by key (page of 1000)', `${range}&groupBy=key`],
  ];
  process.stdout.write(`| query | rows out | first run | best of ${runs} |\n| --- | --- | --- | --- |\n`);
  for (const [label, qs] of queries) {
    const q = parseReportQuery(new URLSearchParams(qs), monthEnd - 1);
    if ('error' in q) throw new Error(`${label}: ${q.error}`);
    const times: number[] = [];
    let out = 0;
    for (let i = 0; i < runs; i++) {
      const started = performance.now();
      const page = await runReport(reports, q);
      times.push(performance.now() - started);
      out = page.rows.length;
    }
    const ms = (v: number): string => (v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(0)} ms`);
    process.stdout.write(`| ${label} | ${out} | ${ms(times[0] ?? 0)} | ${ms(Math.min(...times))} |\n`);
    if (values.explain) {
      const { text, values: params } = buildReportSql(q);
      const plan = await reports.query<{ 'QUERY PLAN': string }>({ text: `EXPLAIN (ANALYZE, BUFFERS) ${text}`, values: params });
      process.stdout.write(plan.rows.map((r) => `    ${r['QUERY PLAN']}`).join('\n') + '\n');
    }
  }
  await reports.end();
} finally {
  await pg0.stop();
}
