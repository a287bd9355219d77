/**
 * Micro-benchmark of a typical guardrail's own work per non-streamed chat request, in one process:
 * the request check (every message's text) and the answer check, on the bench's chat request and the
 * fake provider's answer, with the bench's guardrail (20 keywords + every PII detector, see
 * guardrailFiles in gateway-config.ts). CPU µs per request, median of 5 rounds. Complements the
 * end-to-end `--targets=tollgate,tollgate-guardrails --rounds=N` run, whose numbers on a shared
 * machine drift more than the effect.
 *
 *   npm run build && node dist/bench/guardrail-micro.js [--seconds=1]
 */
import { parseArgs } from 'node:util';
import { compileGuardrail, type CompiledGuardrail } from '../src/guardrails/compile.js';
import { checkRequest } from '../src/guardrails/request.js';
import { JsonGuard } from '../src/guardrails/response.js';
import { PII_KINDS } from '../src/config/types.js';
import { scenarios, QUICK } from './scenarios.js';
import { bodyMaker } from './unique-body.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '1' } } });
const roundMs = Number(values.seconds) * 1000;

const spec = {
  name: 'typical',
  global: true,
  keywords: { action: 'block' as const, words: Array.from({ length: 20 }, (_, i) => `forbidden phrase ${i + 1}`) },
  pii: Object.fromEntries(PII_KINDS.map((k) => [k, 'mask'])),
};
const compiled = compileGuardrail(spec);
if (Array.isArray(compiled)) throw new Error(compiled.join('; '));
const guardrails: readonly CompiledGuardrail[] = [compiled];

const chat = scenarios(QUICK).find((s) => s.name === 'chat');
if (!chat) throw new Error('no chat scenario');
const makeBody = bodyMaker(chat.body);
const WORDS = ['Hello', ' there', ',', ' the', ' answer', ' is', ' forty', '-two', '.', ' Indeed', ' it', ' depends'];
const answer = Buffer.from(
  JSON.stringify({
    id: 'chatcmpl-fake-1764067200000',
    object: 'chat.completion',
    created: 1764067200,
    model: 'gpt-4o-mini',
    choices: [{ index: 0, message: { role: 'assistant', content: Array.from({ length: 20 }, (_, i) => WORDS[i % WORDS.length]).join('') }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 120, completion_tokens: 20, total_tokens: 140 },
  }),
);
const noop = (): void => undefined;

/** µs per call of `fn` over about roundMs, median of 5 rounds (after a warm-up round). */
function time(fn: (i: number) => void): number {
  const samples: number[] = [];
  let i = 0;
  for (let round = 0; round <= 5; round++) {
    const start = process.hrtime.bigint();
    const end = start + BigInt(roundMs) * 1_000_000n;
    let calls = 0;
    let now = start;
    while (now < end) {
      for (let k = 0; k < 200; k++) fn(i++);
      calls += 200;
      now = process.hrtime.bigint();
    }
    if (round > 0) samples.push(Number(now - start) / 1000 / calls);
  }
  samples.sort((a, b) => a - b);
  return samples[2] as number;
}

const bodies = Array.from({ length: 1024 }, (_, i) => makeBody(i).toString('utf8'));
const parseOnly = time((i) => JSON.parse(bodies[i & 1023] as string));
const parseAndCheck = time((i) => {
  const json = JSON.parse(bodies[i & 1023] as string) as Record<string, unknown>;
  const v = checkRequest(json, guardrails, noop);
  if (v.kind !== 'pass' || v.changed) throw new Error('the bench request must pass unchanged');
});
const answerCheck = time(() => {
  const out = new JsonGuard(guardrails, noop).push(answer, true);
  if (out?.kind !== 'bytes' || out.body !== answer) throw new Error('the bench answer must pass unchanged');
});
const request = parseAndCheck - parseOnly;
process.stdout.write(
  `Node ${process.version}, ${roundMs} ms x 5 rounds (median); guardrail: 20 keywords + ${PII_KINDS.length} PII detectors\n` +
    `request check: ${request.toFixed(2)} µs/request (body parse alone ${parseOnly.toFixed(2)} µs, not counted: the pipeline parses it anyway)\n` +
    `answer check (parse + check, non-streamed): ${answerCheck.toFixed(2)} µs/request\n` +
    `total: ${(request + answerCheck).toFixed(2)} µs/request\n`,
);
