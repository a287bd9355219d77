/**
 * Versioned SQL migrations of the usage ledger. Applied in order at start by the one elected ledger
 * writer, each in its own transaction, under a PostgreSQL advisory lock (so a second replica that
 * believes it leads, during a Lease handover say, waits instead of racing). Applied versions are
 * recorded in tollgate_schema_migrations; a migration is never edited once released, only added.
 */
import type pg from 'pg';

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

/** Advisory lock id of the migrations ("tollgate" in ASCII, as a bigint). */
const MIGRATION_LOCK = 0x746f6c6c67617465n;

/**
 * Columns of the hourly rollup that identify one of its rows: the UTC hour and every column of a
 * usage row that a report groups or filters by (ledger/reports.ts DIMENSIONS), plus the billing
 * month and the currency. Everything a usage row holds except its batch, its row number and the
 * sums, so summing the rollup over any of these columns gives exactly what summing the raw rows gives.
 */
export const ROLLUP_KEY = [
  'hour', 'api_key', 'lineage', 'model', 'upstream_model', 'provider', 'status_class', 'tenant', 'template', 'template_version', 'billing_month', 'currency',
] as const;
/** Summed columns, the same in both tables (cost_picos: exact numeric picos). */
export const ROLLUP_SUMS = [
  'requests', 'prompt_tokens', 'completion_tokens', 'cached_read_tokens', 'cached_write_tokens', 'reasoning_tokens', 'cost_picos', 'latency_ms', 'estimated',
] as const;

/** `INSERT INTO <into> (...) SELECT <key>, sum(...) FROM <from> GROUP BY <key>`: the rollup of some usage rows. */
export function rollupInsertSql(into: string, from: string): string {
  const key = ROLLUP_KEY.join(', ');
  return `INSERT INTO ${into} (${key}, ${ROLLUP_SUMS.join(', ')}, raw_rows)
  SELECT ${key}, ${ROLLUP_SUMS.map((c) => `sum(${c})`).join(', ')}, count(*) FROM ${from} GROUP BY ${key}`;
}

/**
 * Version 3. tollgate_usage_hourly holds one row per UTC hour and report dimensions with summed
 * requests, tokens (each kind), exact cost, latency and raw row count; partitioned by month like
 * tollgate_usage. Reports read it instead of the raw rows (ledger/reports.ts): a month of an
 * account subtree or of every key reads one row per active (hour, key, model, ...) instead of one
 * per flushed batch.
 *
 * It is maintained by a statement-level AFTER INSERT trigger on tollgate_usage whose transition
 * table holds exactly the rows the statement inserted: rows that ON CONFLICT DO NOTHING skipped (a
 * replayed batch) are not in it, so they are not counted twice, and the rollup is updated in the
 * same transaction as the raw rows (both commit or neither). A trigger rather than a second
 * statement in the writer, so that no inserter can bypass it: a writer of an older version still
 * running during a rolling upgrade, or an operator's own INSERT. (Rows inserted straight into a
 * partition, not through tollgate_usage, do not fire it.)
 *
 * The migration takes SHARE ROW EXCLUSIVE on tollgate_usage first: inserts wait until it commits,
 * so every row is either in the backfill or fires the trigger, never both, never neither. The
 * backfill reads the whole ledger once (under the migrations' advisory lock).
 */
const ROLLUP_MIGRATION = `
LOCK TABLE tollgate_usage IN SHARE ROW EXCLUSIVE MODE;
CREATE TABLE tollgate_usage_hourly (
  hour                timestamptz NOT NULL,
  api_key             text        NOT NULL,
  lineage             text        NOT NULL,
  model               text        NOT NULL,
  upstream_model      text        NOT NULL,
  provider            text        NOT NULL,
  status_class        text        NOT NULL,
  tenant              text        NOT NULL,
  template            text        NOT NULL,
  template_version    text        NOT NULL,
  billing_month       text        NOT NULL,
  currency            text        NOT NULL,
  requests            bigint      NOT NULL,
  prompt_tokens       bigint      NOT NULL,
  completion_tokens   bigint      NOT NULL,
  cached_read_tokens  bigint      NOT NULL,
  cached_write_tokens bigint      NOT NULL,
  reasoning_tokens    bigint      NOT NULL,
  cost_picos          numeric(38, 0) NOT NULL,
  latency_ms          bigint      NOT NULL,
  estimated           bigint      NOT NULL,
  raw_rows            bigint      NOT NULL,
  PRIMARY KEY (${ROLLUP_KEY.join(', ')})
) PARTITION BY RANGE (hour);
CREATE TABLE tollgate_usage_hourly_default PARTITION OF tollgate_usage_hourly DEFAULT;
CREATE INDEX tollgate_usage_hourly_key_hour ON tollgate_usage_hourly (api_key, hour);
CREATE INDEX tollgate_usage_hourly_lineage_hour ON tollgate_usage_hourly (lineage text_pattern_ops, hour);
-- One rollup partition per existing raw partition, same bounds, before the backfill (a row in the
-- default partition would keep the month's partition from being created later).
DO $do$
DECLARE p record;
BEGIN
  FOR p IN
    SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) AS bound
    FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = 'tollgate_usage'::regclass AND c.relname LIKE 'tollgate\\_usage\\_y%'
  LOOP
    EXECUTE format('CREATE TABLE %I PARTITION OF tollgate_usage_hourly %s', 'tollgate_usage_hourly_' || substr(p.relname, length('tollgate_usage_') + 1), p.bound);
  END LOOP;
END
$do$;
CREATE FUNCTION tollgate_usage_rollup() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  -- Sorted, so that two writers (a Lease handover) lock rollup rows in the same order.
  ${rollupInsertSql('tollgate_usage_hourly AS h', 'inserted')} ORDER BY ${ROLLUP_KEY.join(', ')}
  ON CONFLICT (${ROLLUP_KEY.join(', ')}) DO UPDATE SET
    ${[...ROLLUP_SUMS, 'raw_rows'].map((c) => `${c} = h.${c} + EXCLUDED.${c}`).join(',\n    ')};
  RETURN NULL;
END
$fn$;
CREATE TRIGGER tollgate_usage_rollup AFTER INSERT ON tollgate_usage
  REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION tollgate_usage_rollup();
${rollupInsertSql('tollgate_usage_hourly', 'tollgate_usage')};
`;

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'usage ledger: monthly-partitioned usage rows and the batches already written',
    sql: `
CREATE TABLE tollgate_ledger_batches (
  batch_id    text PRIMARY KEY,
  records     integer NOT NULL,
  written_at  timestamptz NOT NULL DEFAULT now()
);
-- One row per (hour, key, model, provider, upstream model, status class) of one batch: what the
-- gateways aggregated in memory between two flushes. Costs are exact integers of picos (1e-12 of
-- the currency). Partitioned by month of the hour (UTC); partitions are created by the writer.
CREATE TABLE tollgate_usage (
  batch_id            text        NOT NULL,
  row_no              integer     NOT NULL,
  hour                timestamptz NOT NULL,
  billing_month       text        NOT NULL,
  api_key             text        NOT NULL,
  lineage             text        NOT NULL,
  model               text        NOT NULL,
  upstream_model      text        NOT NULL,
  provider            text        NOT NULL,
  status_class        text        NOT NULL,
  requests            bigint      NOT NULL,
  prompt_tokens       bigint      NOT NULL,
  completion_tokens   bigint      NOT NULL,
  cached_read_tokens  bigint      NOT NULL,
  cached_write_tokens bigint      NOT NULL,
  reasoning_tokens    bigint      NOT NULL,
  cost_picos          numeric(38, 0) NOT NULL,
  currency            text        NOT NULL,
  latency_ms          bigint      NOT NULL,
  estimated           bigint      NOT NULL,
  PRIMARY KEY (hour, batch_id, row_no)
) PARTITION BY RANGE (hour);
CREATE TABLE tollgate_usage_default PARTITION OF tollgate_usage DEFAULT;
-- Reports: one key over a range; an account's subtree (lineage prefix) over a range.
CREATE INDEX tollgate_usage_key_hour ON tollgate_usage (api_key, hour);
CREATE INDEX tollgate_usage_lineage_hour ON tollgate_usage (lineage text_pattern_ops, hour);
CREATE INDEX tollgate_usage_hour ON tollgate_usage (hour);
`,
  },
  {
    version: 2,
    name: 'usage ledger: tenant and prompt template of each row',
    // ALTER on the partitioned parent reaches every partition; a constant default is metadata only
    // (no table rewrite), so this is quick on a ledger of any size. Older rows read as ''.
    sql: `
ALTER TABLE tollgate_usage
  ADD COLUMN tenant           text NOT NULL DEFAULT '',
  ADD COLUMN template         text NOT NULL DEFAULT '',
  ADD COLUMN template_version text NOT NULL DEFAULT '';
`,
  },
  {
    version: 3,
    name: 'usage ledger: hourly rollup of the usage rows, maintained with every insert, backfilled',
    sql: ROLLUP_MIGRATION,
  },
];

/** Applies the migrations not yet applied; returns the versions it applied. */
export async function migrate(pool: pg.Pool, migrations: readonly Migration[] = MIGRATIONS): Promise<number[]> {
  const client = await pool.connect();
  const applied: number[] = [];
  // Checked out, the client has no 'error' listener: a reset between statements must not crash.
  const onError = (): void => undefined;
  client.on('error', onError);
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK.toString()]);
    try {
      await client.query(
        'CREATE TABLE IF NOT EXISTS tollgate_schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())',
      );
      const done = new Set((await client.query<{ version: number }>('SELECT version FROM tollgate_schema_migrations')).rows.map((r) => r.version));
      for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
        if (done.has(m.version)) continue;
        await client.query('BEGIN');
        try {
          await client.query(m.sql);
          await client.query('INSERT INTO tollgate_schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw new Error(`ledger migration ${m.version} (${m.name}) failed: ${err instanceof Error ? err.message : String(err)}`);
        }
        applied.push(m.version);
      }
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK.toString()]).catch(() => undefined);
    }
  } finally {
    client.removeListener('error', onError);
    client.release();
  }
  return applied;
}

/** `tollgate_usage_y2026m12`: the partition of one UTC month. */
export function partitionName(year: number, month: number): string {
  return `tollgate_usage_y${year}m${String(month).padStart(2, '0')}`;
}

/** `tollgate_usage_hourly_y2026m12`: the hourly rollup's partition of one UTC month. */
export function rollupPartitionName(year: number, month: number): string {
  return `tollgate_usage_hourly_y${year}m${String(month).padStart(2, '0')}`;
}

/** Creates the partition (raw and hourly rollup) of the UTC month containing `ms` if it does not exist. */
export async function ensurePartition(pool: pg.Pool | pg.PoolClient, ms: number): Promise<string> {
  const d = new Date(ms);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth() + 1;
  const from = new Date(Date.UTC(y, m - 1, 1)).toISOString();
  const to = new Date(Date.UTC(y, m, 1)).toISOString();
  const name = partitionName(y, m);
  await pool.query(`CREATE TABLE IF NOT EXISTS ${name} PARTITION OF tollgate_usage FOR VALUES FROM ('${from}') TO ('${to}')`);
  // The hourly rollup's partition of the same month (migration 3; not there on an older schema).
  // If the month's rollup rows went to the default partition meanwhile (a writer of the previous
  // version created the raw partition alone, say during a rolling upgrade across a month's end),
  // a plain CREATE ... PARTITION OF would fail on them forever: they are moved into the new
  // partition in the same transaction, inserts into the default partition held back meanwhile.
  const rollup = rollupPartitionName(y, m);
  const inMonth = `hour >= '${from}' AND hour < '${to}'`;
  await pool.query(
    `DO $$ BEGIN
       IF to_regclass('tollgate_usage_hourly') IS NULL OR to_regclass('${rollup}') IS NOT NULL THEN RETURN; END IF;
       LOCK TABLE tollgate_usage_hourly_default IN EXCLUSIVE MODE;
       IF NOT EXISTS (SELECT 1 FROM tollgate_usage_hourly_default WHERE ${inMonth}) THEN
         CREATE TABLE IF NOT EXISTS ${rollup} PARTITION OF tollgate_usage_hourly FOR VALUES FROM ('${from}') TO ('${to}');
         RETURN;
       END IF;
       CREATE TABLE ${rollup} (LIKE tollgate_usage_hourly INCLUDING DEFAULTS);
       WITH moved AS (DELETE FROM tollgate_usage_hourly_default WHERE ${inMonth} RETURNING *) INSERT INTO ${rollup} SELECT * FROM moved;
       ALTER TABLE tollgate_usage_hourly ATTACH PARTITION ${rollup} FOR VALUES FROM ('${from}') TO ('${to}');
     END $$`,
  );
  return name;
}
