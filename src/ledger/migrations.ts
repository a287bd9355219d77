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

/** Creates the partition of the UTC month containing `ms` if it does not exist. */
export async function ensurePartition(pool: pg.Pool | pg.PoolClient, ms: number): Promise<string> {
  const d = new Date(ms);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth() + 1;
  const from = new Date(Date.UTC(y, m - 1, 1)).toISOString();
  const to = new Date(Date.UTC(y, m, 1)).toISOString();
  const name = partitionName(y, m);
  await pool.query(`CREATE TABLE IF NOT EXISTS ${name} PARTITION OF tollgate_usage FOR VALUES FROM ('${from}') TO ('${to}')`);
  return name;
}
