/**
 * The usage ledger against a real redis-server and a real PostgreSQL (test/harness/postgres.ts):
 * memory -> Redis stream -> PostgreSQL, exact and without duplicates, through outages; and end to
 * end through two real gateways (Envoy + Tollgate) with --ledger-url, the fake provider's reported
 * usage equal to the ledger's, to the token.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import OpenAI from 'openai';
import { waitFor } from '../../src/dev/local-stack.js';
import { RedisLockElection } from '../../src/ledger/election.js';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatPicos } from '../../src/billing/money.js';
import { monthSpan } from '../../src/ratelimit/calendar.js';
import { ensurePartition, MIGRATIONS, migrate } from '../../src/ledger/migrations.js';
import { parseReportQuery, runReport, toCsv } from '../../src/ledger/reports.js';
import { LedgerWriter } from '../../src/ledger/writer.js';
import { createLogger } from '../../src/observability/logger.js';
import { registry } from '../../src/observability/metrics.js';
import { createRedisClient, whenReady, type RedisClient } from '../../src/ratelimit/redis.js';
import { UsageAccountant, type UsageRecord } from '../../src/usage/accountant.js';
import { RedisUsageSink, usageStreamKey } from '../../src/usage/redis-sink.js';
import { startPostgres, type PostgresServer } from '../harness/postgres.js';
import { startRedis, type RedisServer } from '../harness/redis.js';
import { startStack, type Stack } from '../harness/stack.js';

const silent = createLogger('test', { write: () => undefined } as never);
const month = new Date().toISOString().slice(0, 7);

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

  it('records land exactly; PostgreSQL down for a while: they wait in Redis (backlog gauge), then land, none lost, none twice', async (t) => {
    const c = await client(t);
    const prefix = 'outage:';
    const sink = new RedisUsageSink(c, prefix);
    const accountant = new UsageAccountant({ sink, logger: silent, maxRecords: 1_000_000 });
    const logged: Record<string, unknown>[] = [];
    const logger = createLogger('test', { write: (line: string) => void logged.push(JSON.parse(line) as Record<string, unknown>) } as never);
    // A bound of 6 batches stands in for the real 100,000, to see the warning near it.
    const w = writerOn(c, prefix, { logger, backlogBound: 6 });
    w.start();
    t.after(() => w.stop());
    let expectTokens = 0;
    let expectCost = 0n;
    const add = (n: number, from: number): void => {
      for (let i = from; i < from + n; i++) {
        const r = record(`default/outage-${i % 5}`, i);
        expectTokens += r.promptTokens + r.completionTokens;
        expectCost += r.costPicos;
        accountant.record(r);
      }
    };
    add(300, 0);
    await accountant.flush();
    await waitFor('first records in the ledger', async () => (await totals('default/outage-')).requests === 300);

    await pg.kill();
    for (let round = 0; round < 5; round++) {
      add(200, 300 + round * 200);
      await accountant.flush(); // into Redis: PostgreSQL is not on this path
    }
    assert.equal(accountant.pendingRecords, 0, 'Redis accepted every batch while PostgreSQL is down');
    await new Promise((r) => setTimeout(r, 6000)); // the writer fails, retries, and reports the backlog
    const backlog = (await registry.getSingleMetric('tollgate_ledger_backlog_batches')?.get())?.values[0]?.value ?? 0;
    assert.ok(backlog >= 5, `backlog gauge ${backlog}`);
    assert.ok(((await registry.getSingleMetric('tollgate_ledger_writes_total')?.get())?.values.find((v) => v.labels['result'] === 'error')?.value ?? 0) > 0);
    assert.equal(await c.xlen(usageStreamKey(prefix)), 5, 'the batches wait in the stream');
    assert.ok(logged.some((l) => l['msg'] === 'usage ledger write failed; records wait in Redis and are retried'), 'a warning when writes start failing');
    assert.ok(logged.some((l) => String(l['msg']).startsWith('usage ledger backlog near its bound') && l['backlog'] === 5 && l['bound'] === 6), 'an error near the bound');

    await pg.restart();
    await waitFor('records written after the outage', async () => (await totals('default/outage-')).requests === 1300);
    const got = await totals('default/outage-');
    assert.equal(got.tokens, expectTokens, 'ledger tokens equal what was recorded, to the token');
    assert.equal(got.cost, expectCost.toString(), 'ledger cost is exact (picos)');
    assert.equal(await c.xlen(usageStreamKey(prefix)), 0, 'written batches leave the stream');
    assert.ok(logged.some((l) => l['msg'] === 'usage ledger: PostgreSQL writes work again'));
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
    assert.equal((await pg.pool.query('SELECT count(*)::int AS n FROM tollgate_ledger_batches')).rows[0]?.n >= 1, true);
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
    for (const bad of ['from=yesterday', 'period=week', 'tz=Mars/Base', 'limit=0', 'cursor=zzz', 'lineage=org', 'sort=x']) {
      assert.ok('error' in parseReportQuery(new URLSearchParams(bad), Date.now()), bad);
    }
  });
});
