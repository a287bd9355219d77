import assert from 'node:assert/strict';
import { test } from 'node:test';
import { guardrailCostLines, median } from './report.js';
import type { BenchReport, RequestRow } from './run.js';
import { scenarios, QUICK } from './scenarios.js';

test('median of odd and even counts, undefined when empty', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([]), undefined);
});

function row(target: RequestRow['target'], round: number, rateUs: number, maxUs: number): RequestRow {
  const load = { sent: 1, ok: 1, failed: 0, latencyMs: { p50: 1, p99: 2, max: 3 } };
  return {
    target,
    round,
    fixedRate: 500,
    max: { requestsPerS: 1000, errors: 0 } as RequestRow['max'],
    maxCpuMs: {},
    maxWaitMs: {},
    rate: load as unknown as RequestRow['rate'],
    rateCpuMs: {},
    extprocCpuUsPerReqRate: rateUs,
    extprocCpuUsPerReqMax: maxUs,
  };
}

test('guardrail cost: one line per round with the ratio, and the median ratio', () => {
  const chat = scenarios(QUICK).find((s) => s.name === 'chat');
  assert.ok(chat);
  const report = {
    results: [
      {
        scenario: chat,
        requests: [row('tollgate', 1, 400, 200), row('tollgate-guardrails', 1, 440, 210), row('tollgate', 2, 500, 200), row('tollgate-guardrails', 2, 500, 260), row('tollgate', 3, 400, 200), row('tollgate-guardrails', 3, 420, 220)],
      },
    ],
  } as unknown as BenchReport;
  const lines = guardrailCostLines(report);
  const rounds = lines.filter((l) => l.startsWith('| chat | '));
  assert.equal(rounds.length, 4);
  assert.match(rounds[0] ?? '', /\| 400 \/ 440 \(1\.10×\) \| 200 \/ 210 \(1\.05×\)/);
  // rate ratios 1.10, 1.00, 1.05 -> 1.05; max ratios 1.05, 1.30, 1.10 -> 1.10
  assert.match(rounds[3] ?? '', /\*\*median\*\* \| \*\*1\.05×\*\* \| \*\*1\.10×\*\*/);
});

test('guardrail cost: nothing without both targets', () => {
  const chat = scenarios(QUICK).find((s) => s.name === 'chat');
  const report = { results: [{ scenario: chat, requests: [row('tollgate', 1, 400, 200)] }] } as unknown as BenchReport;
  assert.deepEqual(guardrailCostLines(report), []);
});
