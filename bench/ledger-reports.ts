/**
 * Usage report latency at scale: loads a month of N usage rows (default 10,000,000) into a temp
 * PostgreSQL from the test harness and times the report queries of GET /admin/usage (the same SQL:
 * parseReportQuery -> runReport) from the raw rows (tollgate_usage, as before migration 3) and from
 * the hourly rollup (tollgate_usage_hourly), checks that both give the same rows, and prints each
 * query's times (and plans with --explain). Never timed in tests.
 *
 *   npx tsc -p tsconfig.json && nice -n 19 node dist/bench/ledger-reports.js [--rows=10000000] [--flushes=10] [--runs=3] [--explain]
 *
 * Data: 10 orgs x 10 teams x 100 keys (10,000 keys, lineage `.org-3.team-37.key-3742.`), 8 models,
 * 3 providers, over every hour of the current UTC month in time order. `--flushes` raw rows fall
 * in each (hour, key, model, provider, status) group, interleaved with the hour's other groups as
 * flushes of many gateways arrive: a gateway writes one row per group per flush (every second
 * while the key has traffic), so a key busy for an hour writes up to 3,600 rows per replica and
 * model into that hour. The default 10 is modest; with --flushes=1 every raw row is its own group,
 * the rollup is as large as the raw table and cannot be faster (the worst case).
 * Loading: the month's raw partition is filled as a plain table with one INSERT ... SELECT FROM
 * generate_series (no index maintenance per row), then ATTACHed, which builds the primary key and
 * the report indexes once, then ANALYZEd; the rollup's partition is filled from it with the
 * migration's backfill statement, ATTACHed and ANALYZEd the same way. Each step's time is printed.
 *
 * Queries (the month, as an operator would ask them):
 *   one key by model and day; one key in total; a team (1% of rows) by day; a team by key;
 *   an org (10% of rows) by month; an org by lineage and model (its teams' CSV export); everything
 *   by day; everything by key (first page of 1000); everything by lineage and model (first page).
 */
import { parseArgs } from 'node:util';
import pg from 'pg';
import { isDeepStrictEqual } from 'node:util';
import { ensurePartition, migrate, partitionName, rollupInsertSql, rollupPartitionName } from '../src/ledger/migrations.js';
import { ledgerPoolConfig } from '../src/ledger/setup.js';
import { buildReportSql, parseReportQuery, runReport, type ReportSource } from '../src/ledger/reports.js';
import { startPostgres } from '../test/harness/postgres.js';

const { values } = parseArgs({ options: { rows: { type: 'string' }, flushes: { type: 'string' }, runs: { type: 'string' }, explain: { type: 'boolean' } } });
const flushes = Math.max(1, Number(values.flushes ?? 10));
const runs = Number(values.runs ?? 3);
const KEYS = 10_000;

const now = new Date();
const y = now.getUTCFullYear();
const m = now.getUTCMonth();
const monthStart = Date.UTC(y, m, 1);
const monthEnd = Date.UTC(y, m + 1, 1);
const hours = Math.round((monthEnd - monthStart) / 3_600_000);
const month = new Date(monthStart).toISOString().slice(0, 7);
// Groups per hour, so that rows = groupsPerHour x hours x flushes (about --rows).
const groupsPerHour = Math.max(1, Math.floor(Number(values.rows ?? 10_000_000) / flushes / hours));
const perHour = groupsPerHour * flushes;
const rows = perHour * hours;

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
  process.stdout.write(
    `loading ${rows.toLocaleString('en')} rows into ${part} (${KEYS} keys, ${hours} hours, ${groupsPerHour} groups per hour, ${flushes} rows per group)\n`,
  );
  // Gentle on a shared machine: one parallel worker for the index builds.
  await db.query("ALTER SYSTEM SET maintenance_work_mem = '512MB'");
  await db.query('ALTER SYSTEM SET max_parallel_maintenance_workers = 1');
  await db.query('SELECT pg_reload_conf()');
  let load = 0;
  load += await t('create table', `CREATE TABLE ${part} (LIKE tollgate_usage INCLUDING DEFAULTS)`);
  // g: the row; h = its hour; its group gg = h * groupsPerHour + (g % groupsPerHour) within the
  // hour, so an hour's rows cycle through its groups (flushes interleaved); key = gg % KEYS.
  const gg = `((g / ${perHour}) * ${groupsPerHour} + g % ${groupsPerHour})`;
  load += await t(
    'insert (generate_series)',
    `INSERT INTO ${part}
       SELECT 'b' || (g / 500), (g % 500)::int,
              to_timestamp(${monthStart / 1000}) + make_interval(hours => (g / ${perHour})::int),
              '${month}', 'default/key-' || (${gg} % ${KEYS}),
              '.org-' || (${gg} % ${KEYS}) / 1000 || '.team-' || (${gg} % ${KEYS}) / 100 || '.key-' || (${gg} % ${KEYS}) || '.',
              'model-' || ((${gg} / ${KEYS}) % 8), 'up-' || ((${gg} / ${KEYS}) % 8), 'default/provider-' || (${gg} % 3),
              CASE WHEN ${gg} % 50 = 0 THEN '5xx' ELSE '2xx' END,
              1 + g % 5, 100 + g % 900, 10 + g % 300, g % 40, 0, g % 7,
              (g % 1000) * 1000000 + 12345, 'USD', 200 + g % 800, 0
       FROM generate_series(0, ${rows - 1}) AS g`,
  );
  load += await t(
    'attach partition (builds the primary key and report indexes)',
    `ALTER TABLE tollgate_usage ATTACH PARTITION ${part} FOR VALUES FROM ('${new Date(monthStart).toISOString()}') TO ('${new Date(monthEnd).toISOString()}')`,
  );
  load += await t('analyze', `ANALYZE ${part}`);
  // The hourly rollup's partition: migration 3's backfill statement over the month's raw rows.
  const rollup = rollupPartitionName(y, m + 1);
  let build = 0;
  build += await t('rollup: create table', `CREATE TABLE ${rollup} (LIKE tollgate_usage_hourly INCLUDING DEFAULTS)`);
  await db.query("SET work_mem = '256MB'");
  build += await t('rollup: insert (the backfill of migration 3)', rollupInsertSql(rollup, part));
  await db.query('RESET work_mem');
  build += await t(
    'rollup: attach partition (builds its primary key and report indexes)',
    `ALTER TABLE tollgate_usage_hourly ATTACH PARTITION ${rollup} FOR VALUES FROM ('${new Date(monthStart).toISOString()}') TO ('${new Date(monthEnd).toISOString()}')`,
  );
  build += await t('rollup: analyze', `ANALYZE ${rollup}`);
  await ensurePartition(db, monthStart); // already there: a no-op, as the writer would do
  const sizes = async (table: string): Promise<string> => {
    const r = (await db.query<{ table: string; indexes: string; n: string }>(
      `SELECT pg_size_pretty(pg_table_size('${table}')) AS table, pg_size_pretty(pg_indexes_size('${table}')) AS indexes, (SELECT count(*) FROM ${table})::text AS n`,
    )).rows[0];
    return `${Number(r?.n).toLocaleString('en')} rows, table ${r?.table}, indexes ${r?.indexes}`;
  };
  process.stdout.write(`raw loaded in ${load.toFixed(1)} s (${await sizes(part)})\n`);
  process.stdout.write(`rollup built in ${build.toFixed(1)} s (${await sizes(rollup)})\n\n`);

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
    ['org subtree (10%), by lineage and model, CSV export', `${range}&lineage=.org-3.&groupBy=lineage,model&format=csv&limit=10000`],
    ['everything, by day', `${range}&groupBy=&period=day`],
    ['everything, by key (page of 1000)', `${range}&groupBy=key`],
    ['everything, by lineage and model (page of 1000)', `${range}&groupBy=lineage,model`],
  ];
  const ms = (v: number): string => (v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(0)} ms`);
  process.stdout.write(
    `| query | rows out | raw: first run | raw: best of ${runs} | rollup: first run | rollup: best of ${runs} |\n| --- | --- | --- | --- | --- | --- |\n`,
  );
  for (const [label, qs] of queries) {
    const q = parseReportQuery(new URLSearchParams(qs), monthEnd - 1);
    if ('error' in q) throw new Error(`${label}: ${q.error}`);
    const cells: string[] = [];
    const answers: unknown[] = [];
    let out = 0;
    for (const source of ['raw', 'hourly'] as ReportSource[]) {
      const times: number[] = [];
      for (let i = 0; i < runs; i++) {
        const started = performance.now();
        const page = await runReport(reports, q, source);
        times.push(performance.now() - started);
        out = page.rows.length;
        if (i === 0) answers.push(page.rows);
      }
      cells.push(ms(times[0] ?? 0), ms(Math.min(...times)));
    }
    if (!isDeepStrictEqual(answers[0], answers[1])) throw new Error(`${label}: the rollup's answer differs from the raw rows'`);
    process.stdout.write(`| ${label} | ${out} | ${cells.join(' | ')} |\n`);
    if (values.explain) {
      for (const source of ['raw', 'hourly'] as ReportSource[]) {
        const { text, values: params } = buildReportSql(q, source);
        const plan = await reports.query<{ 'QUERY PLAN': string }>({ text: `EXPLAIN (ANALYZE, BUFFERS) ${text}`, values: params });
        process.stdout.write(`    [${source}]\n` + plan.rows.map((r) => `    ${r['QUERY PLAN']}`).join('\n') + '\n');
      }
    }
  }
  process.stdout.write('every report: the same rows from the raw rows and from the rollup\n');
  await reports.end();
} finally {
  await pg0.stop();
}
