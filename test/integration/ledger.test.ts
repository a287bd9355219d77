/**
 * The usage ledger against a real redis-server and a real PostgreSQL (test/harness/postgres.ts):
 * memory -> Redis stream -> PostgreSQL, exact and without duplicates, through outages; and end to
 * end through two real gateways (Envoy + Tollgate) with --ledger-url, the fake provider's reported
 * usage equal to the ledger's, to the token.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import OpenAI from 'openai';
import { startGateway, waitFor, type GatewayProcess } from '../../src/dev/local-stack.js';
import { RedisLockElection } from '../../src/ledger/election.js';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatPicos } from '../../src/billing/money.js';
import { monthSpan } from '../../src/ratelimit/calendar.js';
import { ensurePartition, MIGRATIONS, migrate, partitionName, ROLLUP_KEY, rollupPartitionName, ROLLUP_SUMS } from '../../src/ledger/migrations.js';
import { parseReportQuery, runReport, toCsv, type ReportSource } from '../../src/ledger/reports.js';
import { LedgerWriter } from '../../src/ledger/writer.js';
import { createLogger } from '../../src/observability/logger.js';
import { registry } from '../../src/observability/metrics.js';
import { createRedisClient, whenReady, type RedisClient } from '../../src/ratelimit/redis.js';
import { rowsFromJson, UsageAccountant, type UsageRecord } from '../../src/usage/accountant.js';
import { RedisUsageSink, usageStreamKey } from '../../src/usage/redis-sink.js';
import { startPostgres, type PostgresServer } from '../harness/postgres.js';
import { startRedis, type RedisServer } from '../harness/redis.js';
import { startStack, type Stack } from '../harness/stack.js';

const silent = createLogger('test', { write: () => undefined } as never);
const month = new Date().toISOString().slice(0, 7);

/**
 * Asserts that the hourly rollup holds exactly the sums of the raw rows (every rollup column, the
 * number of raw rows, the cost to the pico) for the rows matching `where`; both read in ONE
 * statement, so one snapshot (a writer committing meanwhile cannot make them differ). Returns the
 * number of rollup rows compared.
 */
async function assertRollupExact(pool: import('pg').Pool, where: string, label: string): Promise<number> {
  const cols = ROLLUP_KEY.join(', ');
  const order = (t: string): string => ROLLUP_KEY.map((c) => `${t}.${c}`).join(', ');
  const row = (
    await pool.query<{ raw: Record<string, string>[]; hourly: Record<string, string>[] }>(
      `SELECT
         (SELECT coalesce(json_agg(r ORDER BY ${order('r')}), '[]') FROM
           (SELECT ${cols}, ${ROLLUP_SUMS.map((c) => `sum(${c})::text AS ${c}`).join(', ')}, count(*)::text AS raw_rows
            FROM tollgate_usage WHERE ${where} GROUP BY ${cols}) r) AS raw,
         (SELECT coalesce(json_agg(h ORDER BY ${order('h')}), '[]') FROM
           (SELECT ${cols}, ${ROLLUP_SUMS.map((c) => `${c}::text AS ${c}`).join(', ')}, raw_rows::text AS raw_rows
            FROM tollgate_usage_hourly WHERE ${where}) h) AS hourly`,
    )
  ).rows[0];
  assert.ok(row, label);
  assert.ok(row.raw.length > 0, `${label}: there are raw rows to compare`);
  assert.deepEqual(row.hourly, row.raw, `${label}: the hourly rollup equals the sum of the raw rows`);
  return row.hourly.length;
}

function record(key: string, i: number): UsageRecord {
  return {
    key, lineage: `.org.${key.split('/')[1]}.`, model: i % 2 === 0 ? 'gpt-4o-mini' : 'gpt-4o', upstreamModel: 'up', provider: 'default/p',
    promptTokens: 10 + (i % 7), completionTokens: 3 + (i % 11), costPicos: BigInt(1_000_000 + i), latencyMs: 5, status: 200, month,
    atMs: Date.now(), reported: true,
  };
}

describe('usage ledger (real Redis, real PostgreSQL)', () => {
  let redis: RedisServer;
  let pg: PostgresServer;
  before(async () => {
    redis = await startRedis();
    pg = await startPostgres();
  });
  after(async () => {
    await pg?.stop();
    await redis?.stop();
  });

  const client = async (t: TestContext, timeoutMs = 5000): Promise<RedisClient> => {
    const c = createRedisClient({ url: redis.url, mode: 'standalone', commandTimeoutMs: timeoutMs, prefix: '' });
    t.after(() => c.disconnect());
    assert.equal(await whenReady(c, 5000), true);
    return c;
  };
  const totals = async (prefix: string): Promise<{ requests: number; tokens: number; cost: string; rows: number }> => {
    const r = await pg.pool.query<{ requests: string; tokens: string; cost: string; rows: string }>(
      `SELECT coalesce(sum(requests),0) AS requests, coalesce(sum(prompt_tokens + completion_tokens),0) AS tokens, coalesce(sum(cost_picos),0)::text AS cost, count(*) AS rows
       FROM tollgate_usage WHERE api_key LIKE $1`,
      [`${prefix}%`],
    );
    const row = r.rows[0];
    return { requests: Number(row?.requests), tokens: Number(row?.tokens), cost: String(row?.cost), rows: Number(row?.rows) };
  };
  const writerOn = (c: RedisClient, prefix: string, extra: Partial<ConstructorParameters<typeof LedgerWriter>[0]> = {}): LedgerWriter =>
    new LedgerWriter({ pool: pg.pool, redis: c, prefix, logger: silent, election: new RedisLockElection(c, prefix), currency: () => 'USD', idleMs: 20, maxBackoffMs: 200, ...extra });

  it('migrations are versioned, applied once, and create this month\'s partition', async (t) => {
    const c = await client(t);
    const w = writerOn(c, 'mig:');
    w.start();
    t.after(() => w.stop());
    await waitFor('migrations', async () => (await pg.pool.query("SELECT to_regclass('tollgate_usage') AS t")).rows[0]?.t !== null);
    assert.deepEqual(await migrate(pg.pool), [], 'a second run applies nothing');
    const versions = (await pg.pool.query<{ version: number }>('SELECT version FROM tollgate_schema_migrations ORDER BY version')).rows.map((r) => r.version);
    assert.deepEqual(versions, MIGRATIONS.map((m) => m.version));
    const d = new Date();
    const part = `tollgate_usage_y${d.getUTCFullYear()}m${String(d.getUTCMonth() + 1).padStart(2, '0')}`;
    await waitFor('partition', async () => (await pg.pool.query('SELECT to_regclass($1) AS t', [part])).rows[0]?.t !== null);
  });

  it('records land exactly; PostgreSQL down: records keep arriving, the backlog gauge rises, a warning near the bound, at the bound batches are refused and counted, the rest land once', async (t) => {
    const c = await client(t);
    const prefix = 'outage:';
    const BOUND = 10;
    const sinkLog: Record<string, unknown>[] = [];
    const writerLog: Record<string, unknown>[] = [];
    const collect = (into: Record<string, unknown>[]) => createLogger('test', { write: (line: string) => void into.push(JSON.parse(line) as Record<string, unknown>) } as never);
    // A bound of 10 batches stands in for the default 100,000 (--ledger-backlog-max-batches).
    const sink = new RedisUsageSink(c, prefix, { maxBatches: BOUND, logger: collect(sinkLog) });
    const accountant = new UsageAccountant({ sink, logger: silent, maxRecords: 1_000_000 });
    const w = writerOn(c, prefix, { logger: collect(writerLog), backlogBound: BOUND, backlogCheckMs: 100 });
    w.start();
    t.after(() => w.stop());
    const counter = async (name: string): Promise<number> => (await registry.getSingleMetric(name)?.get())?.values[0]?.value ?? 0;
    const gauge = (): Promise<number> => counter('tollgate_ledger_backlog_batches');
    const droppedRecords0 = await counter('tollgate_ledger_dropped_records_total');
    const droppedBatches0 = await counter('tollgate_ledger_dropped_batches_total');
    let next = 0;
    /** Records n requests, flushes them as one batch; returns their tokens and cost. */
    const batch = async (n: number): Promise<{ tokens: number; cost: bigint }> => {
      let tokens = 0;
      let cost = 0n;
      for (let i = next; i < next + n; i++) {
        const r = record(`default/outage-${i % 5}`, i);
        tokens += r.promptTokens + r.completionTokens;
        cost += r.costPicos;
        accountant.record(r);
      }
      next += n;
      await accountant.flush();
      return { tokens, cost };
    };
    let expectTokens = 0;
    let expectCost = 0n;
    const first = await batch(300);
    expectTokens += first.tokens;
    expectCost += first.cost;
    await waitFor('first records in the ledger', async () => (await totals('default/outage-')).requests === 300);
    // Acknowledged and deleted just after COMMIT: wait for that too, so the stream starts empty.
    await waitFor('the first batch left the stream', async () => (await c.xlen(usageStreamKey(prefix))) === 0);

    await pg.kill();
    // Restarted even when an assertion below fails, so the next tests have their PostgreSQL.
    let down = true;
    t.after(async () => {
      if (down) await pg.restart();
    });
    // 14 batches of 50 records while PostgreSQL is down: 10 fill the stream to its bound, 4 find it full.
    const seen: number[] = [];
    for (let round = 0; round < 14; round++) {
      const b = await batch(50);
      if (round < BOUND) {
        expectTokens += b.tokens;
        expectCost += b.cost;
      }
      seen.push(await gauge());
    }
    assert.equal(accountant.pendingRecords, 0, 'Redis accepted every batch while PostgreSQL is down');
    assert.deepEqual(seen, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 10, 10, 10, 10], 'the backlog gauge rises with every flush, up to the bound');
    assert.equal(await c.xlen(usageStreamKey(prefix)), BOUND, 'the stream holds exactly the bound');
    const near = sinkLog.filter((l) => String(l['msg']).startsWith('usage ledger backlog near its bound'));
    assert.equal(near.length, 1, 'one warning near the bound, not one per flush');
    assert.equal(near[0]?.['level'], 40, 'a warning');
    assert.equal(near[0]?.['backlog'], 8, 'logged at 80% of the bound');
    assert.equal(near[0]?.['bound'], BOUND);
    assert.match(String(near[0]?.['msg']), /at the bound new batches are not queued for the ledger \(counted in tollgate_ledger_dropped_records_total\)/);
    // At the bound: refused, counted exactly (4 batches of 50), logged once (then rate-limited).
    assert.equal((await counter('tollgate_ledger_dropped_batches_total')) - droppedBatches0, 4);
    assert.equal((await counter('tollgate_ledger_dropped_records_total')) - droppedRecords0, 200);
    const full = sinkLog.filter((l) => String(l['msg']).startsWith('usage ledger backlog full'));
    assert.equal(full.length, 1);
    assert.equal(full[0]?.['level'], 50, 'an error');
    assert.deepEqual([full[0]?.['droppedBatches'], full[0]?.['droppedRecords'], full[0]?.['backlog']], [1, 50, BOUND]);
    // Month-to-date totals (budgets, ApiKey status) still count every request, refused ones too.
    let monthRequests = 0;
    for (let k = 0; k < 5; k++) monthRequests += (await sink.monthToDate(`default/outage-${k}`, month)).requests;
    assert.equal(monthRequests, 300 + 14 * 50);
    // The writer fails, retries, and warns near the bound too (it reads the stream length itself).
    await waitFor('writer warnings', () => Promise.resolve(writerLog.some((l) => String(l['msg']).startsWith('usage ledger backlog near its bound'))));
    assert.ok(writerLog.some((l) => l['msg'] === 'usage ledger write failed; records wait in Redis and are retried'), 'a warning when writes start failing');
    assert.ok(((await registry.getSingleMetric('tollgate_ledger_writes_total')?.get())?.values.find((v) => v.labels['result'] === 'error')?.value ?? 0) > 0);

    await pg.restart();
    down = false;
    await waitFor('records written after the outage', async () => (await totals('default/outage-')).requests === 300 + BOUND * 50, 45_000);
    const got = await totals('default/outage-');
    assert.equal(got.tokens, expectTokens, 'ledger tokens equal what was queued, to the token');
    assert.equal(got.cost, expectCost.toString(), 'ledger cost is exact (picos)');
    // Acknowledged and deleted just after COMMIT: the rows can be visible a moment before.
    await waitFor('written batches leave the stream', async () => (await c.xlen(usageStreamKey(prefix))) === 0);
    await waitFor('backlog gauge back to 0', async () => (await gauge()) === 0);
    assert.ok(writerLog.some((l) => l['msg'] === 'usage ledger: PostgreSQL writes work again'));
    // Below the bound again: new batches are queued and land.
    await batch(10);
    await waitFor('a batch after the outage', async () => (await totals('default/outage-')).requests === 300 + BOUND * 50 + 10);
  });

  it('a writer killed between COMMIT and acknowledgement: the next writer replays the batch and nothing is duplicated', async (t) => {
    const c = await client(t);
    const prefix = 'replay:';
    const sink = new RedisUsageSink(c, prefix);
    const accountant = new UsageAccountant({ sink, logger: silent, maxRecords: 1_000_000 });
    let commits = 0;
    const crashing = writerOn(c, prefix, {
      afterCommit: () => {
        commits++;
        throw new Error('killed after commit');
      },
    });
    for (let i = 0; i < 250; i++) accountant.record(record(`default/replay-${i % 3}`, i));
    await accountant.flush();
    crashing.start();
    await waitFor('a commit', () => Promise.resolve(commits >= 1));
    await crashing.stop();
    assert.equal((await totals('default/replay-')).requests, 250, 'committed once');
    await assertRollupExact(pg.pool, "api_key LIKE 'default/replay-%'", 'after the first commit');
    assert.equal(await c.xlen(usageStreamKey(prefix)), 1, 'not acknowledged: still in the stream');
    // The same batch appended twice more (a replayed flush whose marker was lost): still counted once.
    const entry = (await c.xrange(usageStreamKey(prefix), '-', '+'))[0];
    assert.ok(entry);
    await c.xadd(usageStreamKey(prefix), '*', ...entry[1]);
    const next = writerOn(c, prefix);
    next.start();
    t.after(() => next.stop());
    await waitFor('replayed entries acknowledged', async () => (await c.xlen(usageStreamKey(prefix))) === 0);
    const got = await totals('default/replay-');
    assert.equal(got.requests, 250, 'no duplicates after replay');
    // The replayed batch's rows were skipped by ON CONFLICT DO NOTHING: the rollup did not count them again.
    await assertRollupExact(pg.pool, "api_key LIKE 'default/replay-%'", 'after the replay');
    const rolled = (await pg.pool.query<{ n: string }>("SELECT sum(requests)::text AS n FROM tollgate_usage_hourly WHERE api_key LIKE 'default/replay-%'")).rows[0];
    assert.equal(Number(rolled?.n), 250, 'the rollup counts each request once');
    assert.equal((await pg.pool.query('SELECT count(*)::int AS n FROM tollgate_ledger_batches')).rows[0]?.n >= 1, true);
  });

  it('tenant and prompt template reach the ledger rows, one row per (tenant, template, version), and reports group and filter by them', async (t) => {
    const c = await client(t);
    const prefix = 'tenancy:';
    const accountant = new UsageAccountant({ sink: new RedisUsageSink(c, prefix), logger: silent, maxRecords: 1_000_000 });
    const w = writerOn(c, prefix);
    w.start();
    t.after(() => w.stop());
    for (let i = 0; i < 12; i++) {
      const r = record('default/tenancy', i);
      const tenant = i % 3 === 0 ? {} : { tenant: i % 3 === 1 ? 'acme' : 'globex' };
      const template = i % 4 === 0 ? { template: 'reply-to-en', templateVersion: i < 6 ? 'v1' : 'v2' } : {};
      accountant.record({ ...r, model: 'gpt-4o', ...tenant, ...template });
    }
    await accountant.flush();
    await waitFor('rows in the ledger', async () => (await totals('default/tenancy')).requests === 12);
    const rows = (
      await pg.pool.query<{ tenant: string; template: string; template_version: string; requests: string }>(
        "SELECT tenant, template, template_version, sum(requests)::text AS requests FROM tollgate_usage WHERE api_key = 'default/tenancy' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
      )
    ).rows.map((r) => [r.tenant, r.template, r.template_version, Number(r.requests)]);
    // i = 0..11: tenant '' for i%3==0, acme for 1, globex for 2; template for i%4==0 (v1 below 6).
    assert.deepEqual(rows, [
      ['', '', '', 3], // 3, 6, 9
      ['', 'reply-to-en', 'v1', 1], // 0
      ['acme', '', '', 3], // 1, 7, 10
      ['acme', 'reply-to-en', 'v1', 1], // 4
      ['globex', '', '', 3], // 2, 5, 11
      ['globex', 'reply-to-en', 'v2', 1], // 8
    ]);
    const report = async (qs: string) => {
      const parsed = parseReportQuery(new URLSearchParams(`key=default/tenancy&${qs}`), Date.now() + 3_600_000);
      if ('error' in parsed) throw new Error(parsed.error);
      return (await runReport(pg.pool, parsed)).rows;
    };
    assert.deepEqual((await report('groupBy=tenant')).map((r) => [r['tenant'], r['requests']]), [['', 4], ['acme', 4], ['globex', 4]]);
    assert.deepEqual((await report('groupBy=templateVersion&template=reply-to-en')).map((r) => [r['templateVersion'], r['requests']]), [['v1', 2], ['v2', 1]]);
    assert.deepEqual((await report('groupBy=template&tenant=globex')).map((r) => [r['template'], r['requests']]), [['', 3], ['reply-to-en', 1]]);
  });

  it('only one writer at a time: a second replica waits while the first holds the lock, then takes over', async (t) => {
    const c = await client(t);
    const one = new RedisLockElection(c, 'lock:', 1000);
    const two = new RedisLockElection(c, 'lock:', 1000);
    assert.equal(await one.leading(), true);
    assert.equal(await two.leading(), false);
    assert.equal(await one.leading(), true, 'the holder renews');
    await one.release();
    assert.equal(await two.leading(), true, 'released: the other takes over at once');
    assert.equal(await one.leading(), false);
  });
});

describe('usage ledger end to end: two gateways, one Redis, one PostgreSQL', () => {
  const adminToken = `op-${'7'.repeat(40)}`;
  let tokenDir: string;
  let redis: RedisServer;
  let pg: PostgresServer;
  let a: Stack;
  let b: Stack;
  const FILES = {
    'config.yaml': `apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: { name: primary }
spec:
  type: openai
  endpoint: "{{FAKE:primary}}"
  models:
    - name: gpt-4o-mini
      pricing: { input: "0.15", output: "0.60" }
    - name: llama-free
---
apiVersion: tollgate.dev/v1alpha1
kind: ApiKey
metadata: { name: org }
spec: { accountOnly: true }
---
apiVersion: tollgate.dev/v1alpha1
kind: ApiKey
metadata: { name: team-a }
spec: { keyHash: "sha256:${'0'.repeat(64)}", parent: org }
---
apiVersion: tollgate.dev/v1alpha1
kind: ApiKey
metadata: { name: team-b }
spec: { secretRef: { name: team-b-key, key: key }, parent: org }
---
apiVersion: v1
kind: Secret
metadata: { name: team-b-key }
stringData: { key: sk-ledger-team-b }
`,
  };
  before(async () => {
    redis = await startRedis();
    pg = await startPostgres();
    tokenDir = await mkdtemp(join(tmpdir(), 'tg-admin-'));
    await writeFile(join(tokenDir, 'token'), `${adminToken}\n`, { mode: 0o600 });
    const args = ['--redis-url', redis.url, '--ledger-url', pg.url, '--usage-flush-ms', '100', '--admin-token-file', join(tokenDir, 'token')];
    const fakes = { primary: { chunks: 7, chunkIntervalMs: 0 } };
    a = await startStack({ files: FILES, fakes, gatewayArgs: args });
    b = await startStack({ files: FILES, fakes, gatewayArgs: args });
  });
  after(async () => {
    await a?.stop();
    await b?.stop();
    await pg?.stop();
    await redis?.stop();
    if (tokenDir) await rm(tokenDir, { recursive: true, force: true });
  });

  it('the sum of ledger tokens equals what the fake providers reported, to the token, with the exact cost', async () => {
    const jobs: Promise<unknown>[] = [];
    for (let i = 0; i < 60; i++) {
      const stack = i % 2 === 0 ? a : b;
      const c: OpenAI = stack.client('sk-ledger-team-b');
      jobs.push(c.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `count ${'x'.repeat(i)}` }], stream: i % 3 === 0 }).then(async (r) => {
        if (Symbol.asyncIterator in r) for await (const _ of r) void _;
      }));
    }
    await Promise.all(jobs);
    const reported = [...(a.fakes['primary']?.reported ?? []), ...(b.fakes['primary']?.reported ?? [])];
    assert.equal(reported.length, 60);
    const prompt = reported.reduce((n, r) => n + r.promptTokens, 0);
    const completion = reported.reduce((n, r) => n + r.completionTokens, 0);
    const q = async () =>
      (await pg.pool.query<{ requests: string; prompt: string; completion: string; cost: string }>(
        "SELECT sum(requests) AS requests, sum(prompt_tokens) AS prompt, sum(completion_tokens) AS completion, sum(cost_picos)::text AS cost FROM tollgate_usage WHERE api_key = 'default/team-b' AND lineage = '.org.team-b.'",
      )).rows[0];
    await waitFor('ledger has every request', async () => Number((await q())?.requests) === 60);
    const row = await q();
    assert.equal(Number(row?.prompt), prompt);
    assert.equal(Number(row?.completion), completion);
    assert.equal(row?.cost, (BigInt(prompt) * 150_000n + BigInt(completion) * 600_000n).toString(), 'cost in picos, exact');

    // The admin API reports the same, by key and model, as JSON and CSV, paginated.
    const get = (path: string, headers: Record<string, string> = { authorization: `Bearer ${adminToken}` }) => fetch(`${a.adminUrl}${path}`, { headers });
    const res = await get('/admin/usage?groupBy=key,lineage,model&period=month');
    assert.equal(res.status, 200);
    const body = (await res.json()) as { data: Record<string, string | number>[]; has_more: boolean };
    const teamB = body.data.find((r) => r['key'] === 'default/team-b');
    assert.equal(teamB?.['requests'], 60);
    assert.equal(teamB?.['promptTokens'], prompt);
    assert.equal(teamB?.['completionTokens'], completion);
    assert.equal(teamB?.['lineage'], '.org.team-b.');
    assert.equal(teamB?.['period'], new Date().toISOString().slice(0, 7));
    assert.equal(teamB?.['cost'], formatPicos(BigInt(prompt) * 150_000n + BigInt(completion) * 600_000n));
    assert.equal(teamB?.['currency'], 'USD');
    const csv = await get('/admin/usage?groupBy=key&lineage=.org.&format=csv');
    assert.equal(csv.status, 200);
    assert.match(csv.headers.get('content-type') ?? '', /^text\/csv/);
    const lines = (await csv.text()).trimEnd().split('\r\n');
    assert.equal(lines[0], 'key,requests,promptTokens,completionTokens,totalTokens,cachedReadTokens,cachedWriteTokens,reasoningTokens,estimatedRequests,cost,currency');
    assert.match(lines[1] ?? '', new RegExp(`^default/team-b,60,${prompt},${completion},${prompt + completion},0,0,0,0,`));
    // Auth: no token, a wrong token, a client API key -> 401; a bad query -> 400.
    assert.equal((await get('/admin/usage', {})).status, 401);
    assert.equal((await get('/admin/usage', { authorization: `Bearer ${'x'.repeat(40)}` })).status, 401);
    assert.equal((await get('/admin/usage', { authorization: 'Bearer sk-ledger-team-b' })).status, 401);
    const bad = await get('/admin/usage?groupBy=password');
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { error: { message: string } }).error.message, /unknown dimension "password"/);
    // The client-facing listener serves no report.
    assert.equal((await fetch(`${a.baseUrl}/admin/usage`, { headers: { authorization: `Bearer ${adminToken}` } })).status, 404);
  });

  it('a model with no price is not silent: tollgate_unpriced_requests_total counts its requests, one warning names it', async () => {
    // Visible before any traffic: the configuration in force has one model priced nowhere.
    const gauges = (await (await fetch(`${a.adminUrl}/metrics`)).text()).split('\n').filter((l) => l.startsWith('tollgate_unpriced_models{'));
    assert.deepEqual(gauges, ['tollgate_unpriced_models{model="llama-free"} 1']);
    const c: OpenAI = a.client('sk-ledger-team-b');
    for (let i = 0; i < 3; i++) await c.chat.completions.create({ model: 'llama-free', messages: [{ role: 'user', content: `free ${i}` }] });
    // Counted when the request is finalised, just after the client got its answer.
    const series = async (): Promise<string[]> =>
      (await (await fetch(`${a.adminUrl}/metrics`)).text()).split('\n').filter((l) => l.startsWith('tollgate_unpriced_requests_total{'));
    await waitFor('3 unpriced requests counted', async () => (await series()).some((l) => l.endsWith(' 3')));
    assert.deepEqual(await series(), ['tollgate_unpriced_requests_total{model="llama-free",provider="default/primary"} 3'], 'priced gpt-4o-mini is not counted');
    await waitFor('the warning in the log', async () => (await a.logs()).some((l) => String(l['msg']).startsWith('model has no price')));
    const warnings = (await a.logs()).filter((l) => String(l['msg']).startsWith('model has no price'));
    assert.equal(warnings.length, 1, 'once per model, not per request');
    assert.equal(warnings[0]?.['model'], 'llama-free');
    assert.equal(warnings[0]?.['provider'], 'default/primary');
  });

  it('after the traffic, the hourly rollup equals the sum of the raw rows, and the admin API answers from it the same as from the raw rows', async () => {
    // The 60 priced and 3 free requests of the tests above, from both gateways.
    await waitFor('every request in the ledger', async () =>
      Number((await pg.pool.query<{ n: string }>("SELECT coalesce(sum(requests),0)::text AS n FROM tollgate_usage WHERE api_key = 'default/team-b'")).rows[0]?.n) === 63);
    await assertRollupExact(pg.pool, 'true', 'end to end');
    const res = await fetch(`${a.adminUrl}/admin/usage?groupBy=key,lineage,model,provider&period=day&tz=Asia/Kolkata`, { headers: { authorization: `Bearer ${adminToken}` } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-tollgate-report-source'), 'hourly');
    const body = (await res.json()) as { data: Record<string, string | number>[] };
    const parsed = parseReportQuery(new URLSearchParams('groupBy=key,lineage,model,provider&period=day&tz=Asia/Kolkata'), Date.now());
    if ('error' in parsed) throw new Error(parsed.error);
    assert.deepEqual(body.data, (await runReport(pg.pool, parsed, 'raw')).rows, 'the same report from the raw rows');
    assert.equal(body.data.reduce((n, r) => n + Number(r['requests']), 0), 63);
  });
});

describe('usage ledger: a real gateway process SIGKILLed between COMMIT and XACK', () => {
  // Three real Tollgate processes on one Redis and one PostgreSQL:
  //  A: the ledger writer, with the test hook TOLLGATE_TEST_LEDGER_SIGKILL_AFTER_COMMIT=1 (it sends
  //     itself SIGKILL right after its first COMMIT, before XACK);
  //  B: serves the traffic (Envoy + Tollgate, the official openai client), no ledger of its own:
  //     it only appends its batches to the Redis stream;
  //  C: a new writer started after A died.
  const FILES = {
    'config.yaml': `apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: { name: primary }
spec:
  type: openai
  endpoint: "{{FAKE:primary}}"
  models:
    - name: gpt-4o-mini
      pricing: { input: "0.15", output: "0.60" }
---
apiVersion: tollgate.dev/v1alpha1
kind: ApiKey
metadata: { name: crash }
spec: { secretRef: { name: crash-key, key: key } }
---
apiVersion: v1
kind: Secret
metadata: { name: crash-key }
stringData: { key: sk-ledger-crash }
`,
  };
  let redis: RedisServer;
  let pg: PostgresServer;
  let dir: string;
  let b: Stack | undefined;
  const writers: GatewayProcess[] = [];
  before(async () => {
    redis = await startRedis();
    pg = await startPostgres();
    dir = await mkdtemp(join(tmpdir(), 'tg-crash-'));
  });
  after(async () => {
    for (const w of writers) await w.process.stop('SIGKILL');
    await b?.stop();
    await pg?.stop();
    await redis?.stop();
    if (dir) await rm(dir, { recursive: true, force: true, maxRetries: 5 });
  });

  const writerProcess = async (name: string, env: NodeJS.ProcessEnv = {}): Promise<GatewayProcess> => {
    const workDir = join(dir, name);
    const configDir = join(workDir, 'config');
    await mkdir(configDir, { recursive: true });
    // The writer serves no traffic here; its provider endpoint is never called.
    await writeFile(join(configDir, 'config.yaml'), FILES['config.yaml'].replace('{{FAKE:primary}}', 'http://127.0.0.1:9/v1'));
    const gw = await startGateway({ workDir, configDir, env, extraArgs: ['--redis-url', redis.url, '--ledger-url', pg.url, '--usage-flush-ms', '100'] });
    writers.push(gw);
    return gw;
  };

  it('nothing lost, nothing duplicated: the next writer finds the committed batches and writes only the rest', async () => {
    const a = await writerProcess('a', { TOLLGATE_TEST_LEDGER_SIGKILL_AFTER_COMMIT: '1' });
    const r = createRedisClient({ url: redis.url, mode: 'standalone', commandTimeoutMs: 5000, prefix: '' });
    try {
      assert.equal(await whenReady(r, 5000), true);
      const stream = usageStreamKey('tollgate:');
      await waitFor('A holds the writer lock and migrated', async () =>
        (await r.exists('tollgate:{tollgate}:ledger:writer')) === 1 && (await pg.pool.query("SELECT to_regclass('tollgate_usage') AS t")).rows[0]?.t !== null, 45_000);

      b = await startStack({ files: FILES, fakes: { primary: { chunks: 5, chunkIntervalMs: 0 } }, gatewayArgs: ['--redis-url', redis.url, '--usage-flush-ms', '100'] });
      const openai = b.client('sk-ledger-crash');
      const N = 40;
      for (let wave = 0; wave < 4; wave++) {
        // Waves 100+ ms apart: several flushes, so the stream holds several batches.
        await Promise.all(Array.from({ length: N / 4 }, (_, i) =>
          openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `crash ${wave} ${'y'.repeat(i)}` }], stream: i % 2 === 0 }).then(async (res) => {
            if (Symbol.asyncIterator in res) for await (const _ of res) void _;
          })));
        await new Promise((res) => setTimeout(res, 150));
      }
      const reported = b.fakes['primary']?.reported ?? [];
      assert.equal(reported.length, N);
      const prompt = reported.reduce((n, x) => n + x.promptTokens, 0);
      const completion = reported.reduce((n, x) => n + x.completionTokens, 0);

      // A died by a real SIGKILL, from its own hook, after COMMIT.
      await waitFor('A killed', () => Promise.resolve(!a.process.running), 45_000);
      assert.equal(a.process.child.signalCode, 'SIGKILL');
      const hookLine = (await readFile(a.process.logFile, 'utf8')).split('\n').find((l) => l.includes('ledger test hook: SIGKILL after COMMIT'));
      assert.ok(hookLine, 'A logged the hook just before the signal');
      const killedAfter = (JSON.parse(hookLine) as { batchIds: string[] }).batchIds;
      assert.ok(killedAfter.length >= 1);

      // Every request is in Redis (B flushed them all), none acknowledged by A.
      const month = new Date().toISOString().slice(0, 7);
      await waitFor('B flushed every request', async () => Number(await r.hget(`tollgate:{tollgate}:usage:${month}:default/crash`, 'requests')) === N, 30_000);
      const entries = (await r.xrange(stream, '-', '+')) as [string, string[]][];
      const batches = entries.map(([, f]) => ({ id: f[f.indexOf('id') + 1] as string, rows: rowsFromJson(f[f.indexOf('rows') + 1] as string) }));
      assert.equal(batches.reduce((n, x) => n + x.rows.reduce((m, row) => m + row.requests, 0), 0), N, 'the stream holds every request');
      const pending = (await r.xpending(stream, 'ledger')) as [number, ...unknown[]];
      assert.ok(pending[0] >= 1, 'A read entries and never acknowledged them');
      // The state between COMMIT and XACK: what A read is in PostgreSQL, and still pending in Redis.
      const committed = new Set((await pg.pool.query<{ batch_id: string }>('SELECT batch_id FROM tollgate_ledger_batches')).rows.map((x) => x.batch_id));
      assert.deepEqual([...committed].sort(), [...killedAfter].sort(), 'exactly the batches of the killed transaction are committed');
      const committedRequests = batches.filter((x) => committed.has(x.id)).reduce((n, x) => n + x.rows.reduce((m, row) => m + row.requests, 0), 0);
      assert.equal((await totals()).requests, committedRequests);
      await assertRollupExact(pg.pool, "api_key = 'default/crash'", 'at the kill, the rollup holds exactly the committed rows');

      // C, a new writer, takes over once A's lock lapses (15 s TTL), replays the pending entries.
      await writerProcess('c');
      await waitFor('C drained the stream', async () => (await r.xlen(stream)) === 0, 90_000);
      const got = await totals();
      assert.equal(got.requests, N, 'every request once: nothing lost, nothing twice');
      assert.equal(got.prompt, prompt, 'prompt tokens equal what the fake provider reported, to the token');
      assert.equal(got.completion, completion, 'completion tokens too');
      assert.equal(got.cost, (BigInt(prompt) * 150_000n + BigInt(completion) * 600_000n).toString(), 'exact cost in picos');
      assert.equal(got.rows, batches.reduce((n, x) => n + x.rows.length, 0), 'exactly the rows of the batches, none twice');
      assert.equal(Number((await pg.pool.query<{ n: string }>('SELECT count(*) AS n FROM tollgate_ledger_batches')).rows[0]?.n), batches.length);
      assert.equal(((await r.xpending(stream, 'ledger')) as [number])[0], 0, 'nothing pending');
      // The replayed (already committed) batches were not added to the rollup a second time.
      await assertRollupExact(pg.pool, "api_key = 'default/crash'", 'after the replay by the next writer');
      const rolled = (await pg.pool.query<{ requests: string; cost: string }>(
        "SELECT sum(requests)::text AS requests, sum(cost_picos)::text AS cost FROM tollgate_usage_hourly WHERE api_key = 'default/crash'",
      )).rows[0];
      assert.deepEqual([Number(rolled?.requests), rolled?.cost], [N, got.cost], 'the rollup: every request once, the cost exact');
    } finally {
      r.disconnect();
    }
  });

  const totals = async (): Promise<{ requests: number; prompt: number; completion: number; cost: string; rows: number }> => {
    const row = (await pg.pool.query<{ requests: string; prompt: string; completion: string; cost: string; rows: string }>(
      "SELECT coalesce(sum(requests),0) AS requests, coalesce(sum(prompt_tokens),0) AS prompt, coalesce(sum(completion_tokens),0) AS completion, coalesce(sum(cost_picos),0)::text AS cost, count(*) AS rows FROM tollgate_usage WHERE api_key = 'default/crash'",
    )).rows[0];
    return { requests: Number(row?.requests), prompt: Number(row?.prompt), completion: Number(row?.completion), cost: String(row?.cost), rows: Number(row?.rows) };
  };
});

describe('ledger migration 2 on a ledger written by version 1 (real PostgreSQL)', () => {
  let pg: PostgresServer;
  before(async () => {
    pg = await startPostgres();
  });
  after(() => pg?.stop());

  it('adds tenant and template columns; rows written before read as empty, new rows carry them', async () => {
    assert.deepEqual(await migrate(pg.pool, MIGRATIONS.filter((m) => m.version === 1)), [1]);
    const at = new Date().toISOString();
    await ensurePartition(pg.pool, Date.now());
    await pg.pool.query(
      "INSERT INTO tollgate_usage (batch_id,row_no,hour,billing_month,api_key,lineage,model,upstream_model,provider,status_class,requests,prompt_tokens,completion_tokens,cached_read_tokens,cached_write_tokens,reasoning_tokens,cost_picos,currency,latency_ms,estimated) VALUES ('old',0,$1,$2,'default/k','.k.','m','up','p','2xx',1,1,1,0,0,0,0,'USD',1,0)",
      [at, month],
    );
    const upTo2 = MIGRATIONS.filter((m) => m.version <= 2);
    assert.deepEqual(await migrate(pg.pool, upTo2), [2], 'only the new version is applied');
    assert.deepEqual(await migrate(pg.pool, upTo2), [], 'and only once');
    const old = (await pg.pool.query("SELECT tenant, template, template_version FROM tollgate_usage WHERE batch_id = 'old'")).rows[0];
    assert.deepEqual(old, { tenant: '', template: '', template_version: '' });
    await pg.pool.query(
      "INSERT INTO tollgate_usage (batch_id,row_no,hour,billing_month,api_key,lineage,model,upstream_model,provider,status_class,requests,prompt_tokens,completion_tokens,cached_read_tokens,cached_write_tokens,reasoning_tokens,cost_picos,currency,latency_ms,estimated,tenant,template,template_version) VALUES ('new',0,$1,$2,'default/k','.k.','m','up','p','2xx',1,1,1,0,0,0,0,'USD',1,0,'acme','t','v3')",
      [at, month],
    );
    const fresh = (await pg.pool.query("SELECT tenant, template, template_version FROM tollgate_usage WHERE batch_id = 'new'")).rows[0];
    assert.deepEqual(fresh, { tenant: 'acme', template: 't', template_version: 'v3' });
  });
});

describe('usage ledger backlog bound through a real gateway (--ledger-backlog-max-batches 3)', () => {
  const FILES = {
    'config.yaml': `apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: { name: primary }
spec:
  type: openai
  endpoint: "{{FAKE:primary}}"
  models:
    - name: gpt-4o-mini
      pricing: { input: "0.15", output: "0.60" }
---
apiVersion: tollgate.dev/v1alpha1
kind: ApiKey
metadata: { name: bound }
spec: { secretRef: { name: bound-key, key: key } }
---
apiVersion: v1
kind: Secret
metadata: { name: bound-key }
stringData: { key: sk-ledger-bound }
`,
  };
  let redis: RedisServer;
  let pg: PostgresServer;
  let gw: Stack | undefined;
  before(async () => {
    redis = await startRedis();
    pg = await startPostgres();
    gw = await startStack({
      files: FILES,
      fakes: { primary: { chunks: 3, chunkIntervalMs: 0 } },
      gatewayArgs: ['--redis-url', redis.url, '--ledger-url', pg.url, '--usage-flush-ms', '50', '--ledger-backlog-max-batches', '3'],
    });
  });
  after(async () => {
    await gw?.stop();
    await pg?.stop();
    await redis?.stop();
  });

  it('PostgreSQL down: the gateway keeps serving, the gauge reaches the bound, a warning, then refused batches are counted; ledger + refused = served', async () => {
    const stack = gw as Stack;
    const metric = async (name: string): Promise<number> => {
      const line = (await (await fetch(`${stack.adminUrl}/metrics`)).text()).split('\n').find((l) => l.startsWith(`${name} `));
      return Number(line?.split(' ')[1] ?? NaN);
    };
    const ledgerRequests = async (): Promise<number> =>
      Number((await pg.pool.query<{ n: string }>("SELECT coalesce(sum(requests),0) AS n FROM tollgate_usage WHERE api_key = 'default/bound'")).rows[0]?.n);
    const c = stack.client('sk-ledger-bound');
    const r = createRedisClient({ url: redis.url, mode: 'standalone', commandTimeoutMs: 5000, prefix: '' });
    try {
      assert.equal(await whenReady(r, 5000), true);
      const month = new Date().toISOString().slice(0, 7);
      const flushed = async (): Promise<number> => Number(await r.hget(`tollgate:{tollgate}:usage:${month}:default/bound`, 'requests'));
      let served = 0;
      const wave = async (n: number): Promise<void> => {
        for (let i = 0; i < n; i++) await c.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `bound ${served + i}` }] });
        served += n;
        await waitFor(`${served} requests flushed to Redis`, async () => (await flushed()) === served, 30_000);
      };
      await wave(4);
      await waitFor('first requests in the ledger', async () => (await ledgerRequests()) === 4, 45_000);

      await pg.kill();
      // Each wave is flushed (one or more batches) before the next starts: the stream fills up.
      for (let round = 0; round < 6; round++) await wave(3);
      assert.equal(await metric('tollgate_ledger_backlog_batches'), 3, 'the gauge shows the stream at its bound');
      const droppedBatches = await metric('tollgate_ledger_dropped_batches_total');
      const droppedRecords = await metric('tollgate_ledger_dropped_records_total');
      assert.ok(droppedBatches >= 1 && droppedRecords >= 3, `refused batches are counted (${droppedBatches} batches, ${droppedRecords} records)`);
      const logs = await stack.logs();
      assert.ok(logs.some((l) => String(l['msg']).startsWith('usage ledger backlog near its bound') && l['bound'] === 3), 'a warning near the bound');
      assert.ok(logs.some((l) => String(l['msg']).startsWith('usage ledger backlog full') && l['level'] === 50), 'an error when batches are refused');
      assert.equal(stack.gateway.running, true, 'PostgreSQL going away mid-write does not take the gateway down');

      await pg.restart();
      await waitFor('the queued batches land', async () => (await r.xlen('tollgate:{tollgate}:usage:batches')) === 0 && (await ledgerRequests()) === served - droppedRecords, 60_000);
      assert.equal((await ledgerRequests()) + droppedRecords, served, 'every request is either in the ledger or counted as refused, exactly');
      // Below the bound again: new requests are queued and land, none refused.
      await wave(3);
      await waitFor('a wave after the outage lands', async () => (await ledgerRequests()) === served - droppedRecords, 30_000);
      assert.equal(await metric('tollgate_ledger_dropped_records_total'), droppedRecords, 'nothing refused after PostgreSQL came back');
    } finally {
      r.disconnect();
    }
  });
});

describe('usage reports (real PostgreSQL)', () => {
  let pg: PostgresServer;
  before(async () => {
    pg = await startPostgres();
    await migrate(pg.pool);
  });
  after(() => pg?.stop());

  it('groups by period in a time zone, filters by key and account subtree, paginates without gaps or repeats', async () => {
    // From the real now: 22:00 UTC on the last day of last month, already the 1st of this month in
    // Asia/Tokyo. PostgreSQL keeps its own clock, so the rows must be near today's partitions.
    const thisMonth = monthSpan(Date.now(), 'UTC');
    const base = thisMonth.startMs - 7_200_000;
    const lastMonth = monthSpan(base, 'UTC').id;
    const lastDay = new Date(base).toISOString().slice(0, 10);
    const firstDay = new Date(thisMonth.startMs).toISOString().slice(0, 10);
    await ensurePartition(pg.pool, base);
    await ensurePartition(pg.pool, base + 7_200_000);
    const rows: unknown[][] = [];
    for (let i = 0; i < 30; i++) {
      const hour = new Date(base + (i % 3) * 3_600_000).toISOString();
      const key = `default/k${i % 5}`;
      const lineage = i % 5 < 3 ? `.org.team.k${i % 5}.` : `.other.k${i % 5}.`;
      rows.push([`b${i}`, 0, hour, lastMonth, key, lineage, `m${i % 2}`, 'up', 'default/p', '2xx', 1, 10, 5, 0, 0, 0, '1500000', 'USD', 1, 0]);
    }
    for (const r of rows) {
      await pg.pool.query(
        'INSERT INTO tollgate_usage (batch_id,row_no,hour,billing_month,api_key,lineage,model,upstream_model,provider,status_class,requests,prompt_tokens,completion_tokens,cached_read_tokens,cached_write_tokens,reasoning_tokens,cost_picos,currency,latency_ms,estimated) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20)',
        r,
      );
    }
    const q = (s: string) => {
      const parsed = parseReportQuery(new URLSearchParams(s), base + 86_400_000);
      if ('error' in parsed) throw new Error(parsed.error);
      return runReport(pg.pool, parsed);
    };
    const range = `from=${new Date(base - 86_400_000).toISOString()}&to=${new Date(base + 86_400_000).toISOString()}`;
    const utc = await q(`${range}&groupBy=&period=day`);
    assert.deepEqual(utc.rows.map((r) => [r['period'], r['requests']]), [[lastDay, 20], [firstDay, 10]]);
    const tokyo = await q(`${range}&groupBy=&period=day&tz=Asia/Tokyo`);
    assert.deepEqual(tokyo.rows.map((r) => [r['period'], r['requests']]), [[firstDay, 30]]);
    const one = await q(`${range}&groupBy=model&key=default/k1`);
    assert.deepEqual(one.rows.map((r) => [r['model'], r['requests'], r['totalTokens'], r['cost']]), [['m0', 3, 45, '0.0000045'], ['m1', 3, 45, '0.0000045']]);
    const account = await q(`${range}&groupBy=lineage&lineage=.org.`);
    assert.deepEqual(account.rows.map((r) => r['lineage']), ['.org.team.k0.', '.org.team.k1.', '.org.team.k2.']);
    // Per team: the first N names of each lineage; lineages with fewer names stay whole.
    const byTeam = await q(`${range}&groupBy=lineage&lineageDepth=2`);
    assert.deepEqual(byTeam.rows.map((r) => [r['lineage'], r['requests']]), [['.org.team.', 18], ['.other.k3.', 6], ['.other.k4.', 6]]);
    const byOrgAndDay = await q(`${range}&groupBy=lineage,model&lineageDepth=1&period=day`);
    assert.deepEqual(byOrgAndDay.rows.map((r) => [r['period'], r['lineage'], r['model'], r['requests']]), [
      [lastDay, '.org.', 'm0', 6], [lastDay, '.org.', 'm1', 6], [lastDay, '.other.', 'm0', 4], [lastDay, '.other.', 'm1', 4],
      [firstDay, '.org.', 'm0', 3], [firstDay, '.org.', 'm1', 3], [firstDay, '.other.', 'm0', 2], [firstDay, '.other.', 'm1', 2],
    ]);
    const deeper = await q(`${range}&groupBy=lineage&lineageDepth=9&lineage=.org.`);
    assert.deepEqual(deeper.rows.map((r) => r['lineage']), ['.org.team.k0.', '.org.team.k1.', '.org.team.k2.']);
    // Pages of 2 over the 10 (key, model) groups: every group exactly once, in order.
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await q(`${range}&groupBy=key,model&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      seen.push(...page.rows.map((r) => `${r['key']}|${r['model']}`));
      cursor = page.nextCursor;
      pages++;
    } while (cursor && pages < 20);
    assert.equal(pages, 5);
    assert.equal(new Set(seen).size, 10);
    assert.deepEqual(seen, [...seen].sort());
    assert.match(toCsv([{ key: '=cmd()', requests: 1 }], { groupBy: ['key'], period: 'total' }), /^key,.*\r\n'=cmd\(\),1,/);
    for (const bad of ['from=yesterday', 'period=week', 'tz=Mars/Base', 'limit=0', 'cursor=zzz', 'lineage=org', 'sort=x', 'lineageDepth=2', 'groupBy=lineage&lineageDepth=0', 'groupBy=lineage&lineageDepth=33', 'groupBy=lineage&lineageDepth=1.5']) {
      assert.ok('error' in parseReportQuery(new URLSearchParams(bad), Date.now()), bad);
    }
  });
});

describe('usage reports: the hourly rollup answers exactly as the raw rows (real PostgreSQL)', () => {
  let pg: PostgresServer;
  before(async () => {
    pg = await startPostgres();
    await migrate(pg.pool);
  });
  after(() => pg?.stop());

  const COLUMNS = 'batch_id,row_no,hour,billing_month,api_key,lineage,model,upstream_model,provider,status_class,requests,prompt_tokens,completion_tokens,cached_read_tokens,cached_write_tokens,reasoning_tokens,cost_picos,currency,latency_ms,estimated,tenant,template,template_version';
  /** One multi-row INSERT through tollgate_usage, as the writer does (ON CONFLICT DO NOTHING); returns the rows it inserted. */
  const insert = async (rows: unknown[][]): Promise<number> => {
    const n = COLUMNS.split(',').length;
    const values = rows.map((_, r) => `(${Array.from({ length: n }, (_, c) => `$${r * n + c + 1}`).join(',')})`).join(',');
    return (await pg.pool.query(`INSERT INTO tollgate_usage (${COLUMNS}) VALUES ${values} ON CONFLICT DO NOTHING`, rows.flat())).rowCount ?? 0;
  };

  it('every grouping, filter, period and time zone (30- and 45-minute offsets too), ranges off the hour, and every page: the same rows from both tables', async () => {
    // 60 hours around the start of this UTC month (two partitions), from the real now.
    const start = monthSpan(Date.now(), 'UTC').startMs - 30 * 3_600_000;
    await ensurePartition(pg.pool, start);
    await ensurePartition(pg.pool, start + 60 * 3_600_000);
    // Row i of a batch belongs to one of 120 (hour, key, model, provider, ...) groups, g = i % 120;
    // its sums vary with i.
    const row = (batch: string, i: number): unknown[] => {
      const g = i % 120;
      const hour = start + (g % 60) * 3_600_000;
      const k = g % 7;
      return [
        batch, i, new Date(hour).toISOString(), new Date(hour).toISOString().slice(0, 7), `default/k${k}`, k < 4 ? `.org.team-${k % 2}.k${k}.` : `.other.k${k}.`,
        `m${g % 3}`, `up${g % 2}`, `default/p${g % 2}`, g % 11 === 0 ? '5xx' : '2xx', 1 + (i % 4), 100 + i, 10 + (i % 13), i % 5, i % 3, i % 2,
        // Costs past 2^53 and 2^64 picos: summed exactly in both tables.
        (123_456_789_012_345_678_901n * BigInt(1 + (i % 9)) + BigInt(i)).toString(), 'USD', 5 + i, i % 6 === 0 ? 1 : 0,
        g % 3 === 0 ? '' : g % 3 === 1 ? 'acme' : 'globex', g % 4 === 0 ? 'reply' : '', g % 4 === 0 ? `v${g % 8 === 0 ? 1 : 2}` : '',
      ];
    };
    // Several batches, several rows of one (hour, key, model, ...) each, as flushes of many gateways.
    for (let b = 0; b < 6; b++) assert.equal(await insert(Array.from({ length: 120 }, (_, i) => row(`b${b}`, b * 120 + i))), 120);
    await assertRollupExact(pg.pool, 'true', 'after six batches');
    // A replayed batch (ON CONFLICT DO NOTHING inserts nothing) and one half replayed, half new.
    assert.equal(await insert(Array.from({ length: 120 }, (_, i) => row('b2', 240 + i))), 0);
    assert.equal(await insert(Array.from({ length: 120 }, (_, i) => row('b5', 600 + i * 2))), 60, 'only the new half is inserted');
    const rollupRows = await assertRollupExact(pg.pool, 'true', 'after the replays');
    const rawRows = Number((await pg.pool.query<{ n: string }>('SELECT count(*)::text AS n FROM tollgate_usage')).rows[0]?.n);
    assert.deepEqual([rollupRows, rawRows], [120, 780], 'one rollup row per group; 6 batches + the new half of the 7th');

    const iso = (ms: number): string => new Date(ms).toISOString();
    const ranges = [
      `from=${iso(start)}&to=${iso(start + 60 * 3_600_000)}`,
      // Off the hour: an hour is in the range when its start is.
      `from=${iso(start + 90 * 60_000 + 17_000)}&to=${iso(start + 40 * 3_600_000 + 30 * 60_000)}`,
    ];
    const zones = ['UTC', 'Europe/Berlin', 'Asia/Kolkata', 'Asia/Kathmandu', 'America/St_Johns'];
    const groupings = ['groupBy=', 'groupBy=key', 'groupBy=lineage,model', 'groupBy=provider,status,tenant,template,templateVersion,upstreamModel'];
    const filters = ['', '&lineage=.org.', '&key=default/k3', '&model=m1&provider=default/p0', '&tenant=acme&template=reply'];
    const report = async (qs: string, source: ReportSource, limit = 10_000): Promise<{ rows: unknown[]; pages: number; source: string }> => {
      const rows: unknown[] = [];
      let cursor: string | undefined;
      let pages = 0;
      let from = '';
      do {
        const q = parseReportQuery(new URLSearchParams(`${qs}&limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`), start + 90 * 3_600_000);
        if ('error' in q) throw new Error(`${qs}: ${q.error}`);
        const page = await runReport(pg.pool, q, source);
        rows.push(...page.rows);
        cursor = page.nextCursor;
        from = page.source;
        pages++;
      } while (cursor && pages < 1000);
      return { rows, pages, source: from };
    };
    let compared = 0;
    let n = 0;
    for (const range of ranges) {
      for (const tz of zones) {
        for (const period of ['hour', 'day', 'month', 'total']) {
          n++;
          const qs = `${range}&tz=${tz}&period=${period}&${groupings[n % groupings.length]}${filters[n % filters.length]}`;
          const raw = await report(qs, 'raw');
          const hourly = await report(qs, 'hourly');
          assert.equal(hourly.source, 'hourly');
          assert.deepEqual(hourly.rows, raw.rows, qs);
          assert.ok(raw.rows.length > 0, `${qs}: a report with rows`);
          compared += raw.rows.length;
        }
      }
    }
    assert.ok(compared > 500, `${compared} report rows compared`);
    // Per team (lineageDepth): both tables agree too, and the teams' rows add up to the whole.
    for (const [i, tz] of zones.entries()) {
      const qs = `${ranges[i % 2]}&tz=${tz}&period=${i % 2 ? 'day' : 'total'}&groupBy=lineage,model&lineageDepth=2`;
      const raw = await report(qs, 'raw');
      assert.deepEqual((await report(qs, 'hourly')).rows, raw.rows, qs);
      assert.ok(raw.rows.some((r) => (r as Record<string, unknown>)['lineage'] === '.org.team-0.'), qs);
    }
    // Pages of 7, off-hour range in a +05:30 zone: the same pages from both tables, every group once, in order.
    const qs = `${ranges[1]}&tz=Asia/Kolkata&period=day&groupBy=key,model`;
    const whole = await report(qs, 'raw');
    const rawPages = await report(qs, 'raw', 7);
    const hourlyPages = await report(qs, 'hourly', 7);
    assert.equal(hourlyPages.pages, Math.ceil(whole.rows.length / 7));
    assert.deepEqual(hourlyPages.rows, whole.rows, 'paged from the rollup: every group once, in order');
    assert.deepEqual(rawPages.rows, whole.rows);
    // The +05:30 day boundary, computed here from the stored rows: an hour counts in the Kolkata day
    // its start falls in (the UTC hour 18:00 starts at 23:30 there). Both tables answer exactly that.
    const fromMs = start + 90 * 60_000 + 17_000;
    const toMs = start + 40 * 3_600_000 + 30 * 60_000;
    const expected = new Map<string, number>();
    for (const r of (await pg.pool.query<{ hour: Date; requests: string }>('SELECT hour, requests::text FROM tollgate_usage')).rows) {
      const at = r.hour.getTime();
      if (at < fromMs || at >= toMs) continue;
      const dayIn = new Date(at + 330 * 60_000).toISOString().slice(0, 10);
      expected.set(dayIn, (expected.get(dayIn) ?? 0) + Number(r.requests));
    }
    assert.ok(expected.size >= 2, 'the range spans a Kolkata midnight');
    for (const source of ['raw', 'hourly'] as const) {
      const days = (await report(`${ranges[1]}&tz=Asia/Kolkata&period=day&groupBy=`, source)).rows as Record<string, string | number>[];
      assert.deepEqual(days.map((r) => [r['period'], r['requests']]), [...expected].sort(), `Kolkata days from the ${source} rows`);
    }
    // Unforced, a report reads the rollup.
    const q = parseReportQuery(new URLSearchParams('groupBy=key'), start + 90 * 3_600_000);
    if ('error' in q) throw new Error(q.error);
    assert.equal((await runReport(pg.pool, q)).source, 'hourly');
  });
});

describe('ledger migration 3 on a ledger written by version 2 (real PostgreSQL)', () => {
  let pg: PostgresServer;
  before(async () => {
    pg = await startPostgres();
  });
  after(() => pg?.stop());

  it('backfills the hourly rollup from the rows already there (month partitions and the default one), then the insert trigger keeps it exact', async () => {
    assert.deepEqual(await migrate(pg.pool, MIGRATIONS.filter((m) => m.version < 3)), [1, 2]);
    const now = Date.now();
    await ensurePartition(pg.pool, now); // the raw partition only: there is no rollup yet
    const ins = (batch: string, i: number, hourMs: number, key: string): Promise<unknown> =>
      pg.pool.query(
        `INSERT INTO tollgate_usage (batch_id,row_no,hour,billing_month,api_key,lineage,model,upstream_model,provider,status_class,requests,prompt_tokens,completion_tokens,cached_read_tokens,cached_write_tokens,reasoning_tokens,cost_picos,currency,latency_ms,estimated,tenant,template,template_version)
         VALUES ($1,$2,$3,$4,$5,'.org.',$6,'up','default/p','2xx',2,11,7,1,0,3,$7,'USD',9,0,'','','')`,
        [batch, i, new Date(hourMs - (hourMs % 3_600_000)).toISOString(), month, key, `m${i % 2}`, (10n ** 22n + BigInt(i)).toString()],
      );
    for (let i = 0; i < 40; i++) await ins('old', i, now - (i % 4) * 3_600_000, `default/k${i % 3}`);
    // Rows in the default partition (a month without its own partition).
    const d = new Date(now);
    // From the real now: a month 25 years back has no partition of its own, and one 5 years ahead
    // is not one the gateway (or this test) creates.
    const longAgo = Date.UTC(d.getUTCFullYear() - 25, 0, 15, 10);
    for (let i = 0; i < 10; i += 2) await ins('ancient', i, longAgo, 'default/k0');
    assert.equal((await pg.pool.query("SELECT to_regclass('tollgate_usage_hourly') AS t")).rows[0]?.t, null);

    assert.deepEqual(await migrate(pg.pool), [3], 'only the new version is applied');
    assert.deepEqual(await migrate(pg.pool), [], 'and only once');
    const part = rollupPartitionName(d.getUTCFullYear(), d.getUTCMonth() + 1);
    assert.notEqual((await pg.pool.query('SELECT to_regclass($1) AS t', [part])).rows[0]?.t, null, 'a rollup partition for the existing month');
    assert.equal(await assertRollupExact(pg.pool, 'true', 'backfilled'), 3 * 4 + 1);
    // The rollup rows of one (hour, key, model): many raw rows summed.
    const ancient = (await pg.pool.query("SELECT requests::text, raw_rows::text, cost_picos::text FROM tollgate_usage_hourly_default")).rows;
    assert.deepEqual(ancient, [{ requests: '10', raw_rows: '5', cost_picos: (5n * 10n ** 22n + 20n).toString() }]);

    // New rows, and a replay of old ones, after the migration: kept exact by the trigger.
    for (let i = 40; i < 50; i++) await ins('new', i, now, 'default/k9');
    await assert.rejects(ins('old', 3, now - 3 * 3_600_000, 'default/k0'), /duplicate key/, 'a plain INSERT of an existing row fails and adds nothing');
    await assertRollupExact(pg.pool, 'true', 'after new rows');
    // The next month's partitions, raw and rollup, are created together.
    await ensurePartition(pg.pool, now + 32 * 86_400_000);
    const next = new Date(now + 32 * 86_400_000);
    const nextPart = rollupPartitionName(next.getUTCFullYear(), next.getUTCMonth() + 1);
    assert.notEqual((await pg.pool.query('SELECT to_regclass($1) AS t', [nextPart])).rows[0]?.t, null);

    // A writer of version 2 (a rolling upgrade across a month's end) creates only the raw partition of
    // a new month and writes into it: the trigger puts the rollup rows into the default partition.
    // The next ensurePartition of this version moves them into the month's rollup partition.
    const [ly, lm] = [d.getUTCFullYear() + 5, d.getUTCMonth() + 1];
    const later = Date.UTC(ly, lm - 1, 10, 7);
    const laterFrom = new Date(Date.UTC(ly, lm - 1, 1)).toISOString();
    const laterTo = new Date(Date.UTC(ly, lm, 1)).toISOString();
    await pg.pool.query(`CREATE TABLE ${partitionName(ly, lm)} PARTITION OF tollgate_usage FOR VALUES FROM ('${laterFrom}') TO ('${laterTo}')`);
    for (let i = 0; i < 4; i++) await ins('upgrade', i, later + (i % 2) * 3_600_000, 'default/k1');
    const inDefault = `SELECT count(*)::int AS n FROM tollgate_usage_hourly_default WHERE hour >= '${laterFrom}'`;
    assert.equal((await pg.pool.query(inDefault)).rows[0]?.n, 2);
    await ensurePartition(pg.pool, later);
    assert.equal((await pg.pool.query(inDefault)).rows[0]?.n, 0, 'moved out of the default partition');
    assert.equal((await pg.pool.query(`SELECT count(*)::int AS n FROM ${rollupPartitionName(ly, lm)}`)).rows[0]?.n, 2, 'into the month\'s');
    await ensurePartition(pg.pool, later); // again: nothing to do
    await ins('upgrade', 4, later, 'default/k1'); // the trigger writes into the new partition
    await assertRollupExact(pg.pool, 'true', 'after the move');
  });
});
