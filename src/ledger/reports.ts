/**
 * Usage reports from the PostgreSQL ledger (admin API GET /admin/usage): usage and cost over a time
 * range, grouped by any of key, lineage (account), model, provider, upstream model, status
 * class, tenant and prompt template (and its version), per hour/day/month (in a time zone) or in total, as JSON or CSV, paginated.
 *
 * parseReportQuery is pure and turns the query string into a ReportQuery or a readable error;
 * buildReportSql turns a ReportQuery into SQL whose identifiers come only from fixed tables (never
 * from the request) and whose values are all bind parameters. Reports read the hourly rollup
 * (tollgate_usage_hourly, migration 3) when the database has it, which gives the same answer as the
 * raw rows (ReportSource). In both tables the one-key query is served by the (api_key, hour) index
 * and partition pruning; an account's subtree by (lineage text_pattern_ops, hour).
 */
import type pg from 'pg';
import { formatPicos } from '../billing/money.js';
import { isValidTimeZone } from '../config/limits.js';

/** Group-by dimensions: request name -> column. */
const DIMENSIONS = {
  key: 'api_key',
  lineage: 'lineage',
  model: 'model',
  provider: 'provider',
  upstreamModel: 'upstream_model',
  status: 'status_class',
  tenant: 'tenant',
  template: 'template',
  templateVersion: 'template_version',
} as const;
export type Dimension = keyof typeof DIMENSIONS;

export type Period = 'hour' | 'day' | 'month' | 'total';
const PERIODS: readonly Period[] = ['hour', 'day', 'month', 'total'];

export interface ReportQuery {
  readonly fromMs: number;
  readonly toMs: number;
  readonly groupBy: readonly Dimension[];
  readonly period: Period;
  readonly timeZone: string;
  /** Exact `namespace/name` of an ApiKey. */
  readonly key?: string;
  /** Lineage prefix: an account and everything below it (`.org.team.`). */
  readonly lineage?: string;
  /**
   * With groupBy lineage: group by the first N names of each lineage (2 = `.org.team.`), so every
   * team's keys add up to one row. Lineages with fewer names are kept whole.
   */
  readonly lineageDepth?: number;
  readonly model?: string;
  readonly provider?: string;
  /** Tenant name (GatewayConfig spec.tenants). */
  readonly tenant?: string;
  /** PromptTemplate name. */
  readonly template?: string;
  readonly format: 'json' | 'csv';
  readonly limit: number;
  readonly offset: number;
}

export const MAX_LIMIT = 10_000;
/** Deeper than any key hierarchy the config accepts is pointless; a bound keeps the pattern small. */
const MAX_LINEAGE_DEPTH = 32;
const MAX_RANGE_MS = 400 * 86_400_000;

/** Reads the query string; an error message names the parameter at fault. */
export function parseReportQuery(params: URLSearchParams, nowMs: number): ReportQuery | { readonly error: string } {
  const known = new Set(['from', 'to', 'groupBy', 'period', 'tz', 'key', 'lineage', 'lineageDepth', 'model', 'provider', 'tenant', 'template', 'format', 'limit', 'cursor']);
  for (const name of params.keys()) if (!known.has(name)) return { error: `unknown parameter "${name}" (known: ${[...known].join(', ')})` };
  const now = new Date(nowMs);
  const monthStart = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1);
  const time = (name: string, fallback: number): number | { error: string } => {
    const v = params.get(name);
    if (v === null) return fallback;
    const ms = Date.parse(v);
    return Number.isFinite(ms) && /^\d{4}-\d{2}-\d{2}/.test(v) ? ms : { error: `${name} must be an RFC 3339 time or a date (2026-11-01), got "${v}"` };
  };
  const fromMs = time('from', monthStart);
  if (typeof fromMs !== 'number') return fromMs;
  const toMs = time('to', nowMs);
  if (typeof toMs !== 'number') return toMs;
  if (toMs <= fromMs) return { error: 'to must be after from' };
  if (toMs - fromMs > MAX_RANGE_MS) return { error: 'the range may cover at most 400 days' };
  const groupBy: Dimension[] = [];
  for (const d of (params.get('groupBy') ?? 'key').split(',').filter((x) => x.length > 0)) {
    if (!(d in DIMENSIONS)) return { error: `groupBy: unknown dimension "${d}" (known: ${Object.keys(DIMENSIONS).join(', ')})` };
    if (!groupBy.includes(d as Dimension)) groupBy.push(d as Dimension);
  }
  const period = params.get('period') ?? 'total';
  if (!(PERIODS as readonly string[]).includes(period)) return { error: `period must be one of ${PERIODS.join(', ')}` };
  const timeZone = params.get('tz') ?? 'UTC';
  if (!isValidTimeZone(timeZone)) return { error: `tz: unknown time zone "${timeZone}"` };
  const format = params.get('format') ?? 'json';
  if (format !== 'json' && format !== 'csv') return { error: 'format must be json or csv' };
  const limit = Number(params.get('limit') ?? '1000');
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) return { error: `limit must be an integer from 1 to ${MAX_LIMIT}` };
  let offset = 0;
  const cursor = params.get('cursor');
  if (cursor !== null) {
    const decoded = /^o(\d{1,9})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (!decoded) return { error: 'cursor is not one this API returned' };
    offset = Number(decoded[1]);
  }
  const lineage = params.get('lineage') ?? undefined;
  if (lineage !== undefined && !/^\.([a-z0-9]([-a-z0-9.]*[a-z0-9])?\.)+$/.test(lineage)) return { error: 'lineage must look like .org.team. (ApiKey names between dots)' };
  let lineageDepth: number | undefined;
  const depth = params.get('lineageDepth');
  if (depth !== null) {
    lineageDepth = Number(depth);
    if (!/^\d{1,2}$/.test(depth) || lineageDepth < 1 || lineageDepth > MAX_LINEAGE_DEPTH) return { error: `lineageDepth must be an integer from 1 to ${MAX_LINEAGE_DEPTH}` };
    if (!groupBy.includes('lineage')) return { error: 'lineageDepth needs groupBy=lineage' };
  }
  const opt = (name: string): string | undefined => {
    const v = params.get(name);
    return v === null || v === '' ? undefined : v;
  };
  const key = opt('key');
  const model = opt('model');
  const provider = opt('provider');
  const tenant = opt('tenant');
  const template = opt('template');
  return {
    fromMs, toMs, groupBy, period: period as Period, timeZone, format, limit, offset,
    ...(key ? { key } : {}), ...(lineage ? { lineage } : {}), ...(lineageDepth !== undefined ? { lineageDepth } : {}), ...(model ? { model } : {}), ...(provider ? { provider } : {}),
    ...(tenant ? { tenant } : {}), ...(template ? { template } : {}),
  };
}

/**
 * Where a report is read from. `hourly`: tollgate_usage_hourly, the rollup (migration 3), one row
 * per UTC hour and dimensions. `raw`: tollgate_usage, one row per flushed batch and dimensions.
 *
 * The two give the same answer to every query: a raw row carries no time finer than its UTC
 * `hour` either (the gateways bucket requests per UTC hour before they flush), every filter and
 * group of a report is a column of both tables, and the rollup holds exactly the sums of the raw
 * rows (kept by the insert trigger in the same transaction). So a range or a period boundary that is
 * not on a whole UTC hour (`from=…T10:30Z`, `tz=Asia/Kolkata`) assigns each stored hour to the same
 * side or bucket in both tables (the hour's start decides), and the rollup can answer it too.
 */
export type ReportSource = 'hourly' | 'raw';
const SOURCE_TABLE: Record<ReportSource, string> = { hourly: 'tollgate_usage_hourly', raw: 'tollgate_usage' };

/** SQL and parameters of a report page (one row more than `limit`, to know whether more follow). */
export function buildReportSql(q: ReportQuery, source: ReportSource = 'hourly'): { text: string; values: unknown[] } {
  const values: unknown[] = [new Date(q.fromMs).toISOString(), new Date(q.toMs).toISOString()];
  const where = ['hour >= $1', 'hour < $2'];
  const filter = (column: string, value: string | undefined, op = '='): void => {
    if (value === undefined) return;
    values.push(value);
    where.push(`${column} ${op} $${values.length}`);
  };
  filter('api_key', q.key);
  // Prefix match on the index (text_pattern_ops); ApiKey names cannot hold LIKE's wildcards (% and _).
  if (q.lineage !== undefined) filter('lineage', `${q.lineage}%`, 'LIKE');
  filter('model', q.model);
  filter('provider', q.provider);
  filter('tenant', q.tenant);
  filter('template', q.template);
  let lineageColumn: string = DIMENSIONS.lineage;
  if (q.lineageDepth !== undefined) {
    // The first N names of `.org.team.key.`; shallower lineages whole (substring gives NULL).
    values.push(`^((?:\\.[^.]+){${q.lineageDepth}}\\.)`);
    lineageColumn = `coalesce(substring(lineage from $${values.length}), lineage)`;
  }
  const column = (d: Dimension): string => (d === 'lineage' ? lineageColumn : DIMENSIONS[d]);
  const dims = q.groupBy.map((d) => `${column(d)} AS "${d}"`);
  // GROUP BY names the expressions: in GROUP BY an input column wins over an output alias of the
  // same name, so "lineage" would group by the whole lineage, not its first N names.
  const groupExprs = q.groupBy.map(column);
  const dimGroup = q.groupBy.map((d) => `"${d}"`);
  const sums = (cast: string): string =>
    ['requests', 'prompt_tokens', 'completion_tokens', 'cached_read_tokens', 'cached_write_tokens', 'reasoning_tokens', 'cost_picos', 'estimated']
      .map((c) => `sum(${c})${cast} AS ${c}`)
      .join(', ');
  const filtered = `FROM ${SOURCE_TABLE[source]} WHERE ${where.join(' AND ')}`;
  let body: string;
  let order: string;
  if (q.period === 'total') {
    body = `SELECT ${[...dims, 'currency'].join(', ')}, ${sums('::text')} ${filtered} GROUP BY ${[...groupExprs, 'currency'].join(', ')}`;
    order = [...dimGroup, 'currency'].join(', ');
  } else {
    values.push(q.timeZone);
    const bucket = `date_trunc('${q.period}', hour AT TIME ZONE $${values.length})`;
    const format = q.period === 'hour' ? 'YYYY-MM-DD"T"HH24:00' : q.period === 'day' ? 'YYYY-MM-DD' : 'YYYY-MM';
    // Two steps: per stored hour first, then into the period's buckets. Grouping by the plain hour
    // column lets the planner estimate the groups from its statistics; grouped by the
    // date_trunc(... AT TIME ZONE ...) expression it guessed 40,000 groups and sorted every row on
    // disk instead of hashing. The period's text sorts like its timestamp.
    const inner = `SELECT hour, ${[...dims, 'currency'].join(', ')}, ${sums('')} ${filtered} GROUP BY hour, ${[...groupExprs, 'currency'].join(', ')}`;
    body =
      `SELECT to_char(${bucket}, '${format}') AS period, ${[...dimGroup, 'currency'].join(', ')}, ${sums('::text')}` +
      ` FROM (${inner}) AS by_hour GROUP BY ${[bucket, ...dimGroup, 'currency'].join(', ')}`;
    order = ['period', ...dimGroup, 'currency'].join(', ');
  }
  values.push(q.limit + 1, q.offset);
  const page = `ORDER BY ${order} LIMIT $${values.length - 1} OFFSET $${values.length}`;
  // Filtered (a key, an account subtree, a model or provider): aggregate the matching rows first,
  // then sort and page the groups. Otherwise, for ORDER BY key LIMIT n the planner walked the
  // (api_key, hour) index in key order and filtered the whole month row by row (an account
  // subtree by key over 10M rows: 8 s instead of 0.3 s; docs/billing.md). Unfiltered, that walk
  // is what makes the first pages cheap, so it stays.
  const narrowed = q.key !== undefined || q.lineage !== undefined || q.model !== undefined || q.provider !== undefined || q.tenant !== undefined || q.template !== undefined;
  const text = narrowed ? `WITH report AS MATERIALIZED (${body}) SELECT * FROM report ${page}` : `${body} ${page}`;
  return { text, values };
}

/** One line of a report. */
export interface ReportRow {
  readonly [column: string]: string | number;
}

export interface ReportPage {
  readonly rows: readonly ReportRow[];
  /** Cursor of the next page, or undefined on the last one. */
  readonly nextCursor: string | undefined;
  /** The table that answered. */
  readonly source: ReportSource;
}

type DbRow = Record<string, string | null>;

/** Pools whose database has the hourly rollup (a schema never loses it, so a yes is kept). */
const hasRollup = new WeakSet<pg.Pool>();

/**
 * The hourly rollup when the database has it, else the raw rows: a replica of this version can
 * answer reports before the ledger writer (an older replica during a rolling upgrade) applied
 * migration 3. The migration creates the rollup, its trigger and its backfill in one transaction,
 * so once the table is visible it is complete.
 */
async function chooseSource(pool: pg.Pool): Promise<ReportSource> {
  if (hasRollup.has(pool)) return 'hourly';
  const found = await pool.query<{ t: string | null }>("SELECT to_regclass('tollgate_usage_hourly')::text AS t");
  if (found.rows[0]?.t === null || found.rows[0] === undefined) return 'raw';
  hasRollup.add(pool);
  return 'hourly';
}

/** Runs a report query (from the hourly rollup when there is one; `source` forces a table, for tests and benches). */
export async function runReport(pool: pg.Pool, q: ReportQuery, source?: ReportSource): Promise<ReportPage> {
  const from = source ?? (await chooseSource(pool));
  const { text, values } = buildReportSql(q, from);
  const result = await pool.query<DbRow>({ text, values });
  const more = result.rows.length > q.limit;
  const rows = (more ? result.rows.slice(0, q.limit) : result.rows).map((r): ReportRow => {
    const out: Record<string, string | number> = {};
    if (q.period !== 'total') out['period'] = r['period'] ?? '';
    for (const d of q.groupBy) out[d] = r[d] ?? '';
    const n = (c: string): number => Number(r[c] ?? 0);
    out['requests'] = n('requests');
    out['promptTokens'] = n('prompt_tokens');
    out['completionTokens'] = n('completion_tokens');
    out['totalTokens'] = n('prompt_tokens') + n('completion_tokens');
    out['cachedReadTokens'] = n('cached_read_tokens');
    out['cachedWriteTokens'] = n('cached_write_tokens');
    out['reasoningTokens'] = n('reasoning_tokens');
    out['estimatedRequests'] = n('estimated');
    out['cost'] = formatPicos(BigInt(r['cost_picos'] ?? '0'));
    out['currency'] = r['currency'] ?? '';
    return out;
  });
  return { rows, nextCursor: more ? Buffer.from(`o${q.offset + q.limit}`).toString('base64url') : undefined, source: from };
}

/** RFC 4180 CSV of a page: a header line, then one line per row (CRLF). */
export function toCsv(rows: readonly ReportRow[], q: Pick<ReportQuery, 'groupBy' | 'period'>): string {
  const columns = [
    ...(q.period !== 'total' ? ['period'] : []),
    ...q.groupBy,
    'requests', 'promptTokens', 'completionTokens', 'totalTokens', 'cachedReadTokens', 'cachedWriteTokens', 'reasoningTokens', 'estimatedRequests', 'cost', 'currency',
  ];
  const cell = (v: string | number | undefined): string => {
    const s = v === undefined ? '' : String(v);
    // Quote when needed; a leading = + - @ is prefixed so spreadsheets do not run it as a formula.
    const safe = /^[=+\-@\t\r]/.test(s) && typeof v === 'string' ? `'${s}` : s;
    return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
  };
  return [columns.join(','), ...rows.map((r) => columns.map((c) => cell(r[c])).join(','))].join('\r\n') + '\r\n';
}
