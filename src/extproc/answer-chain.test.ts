import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AnswerChain } from './answer-chain.js';

const tick = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('AnswerChain', () => {
  it('answers synchronously when nothing is pending', () => {
    const chain = new AnswerChain();
    const out: number[] = [];
    chain.run(() => void out.push(1));
    assert.deepEqual(out, [1]);
  });

  it('keeps order across several queued asynchronous steps', async () => {
    const chain = new AnswerChain();
    const out: number[] = [];
    chain.run(() => tick(30).then(() => void out.push(1)));
    chain.run(() => tick(1).then(() => void out.push(2)));
    chain.run(() => void out.push(3));
    // The first step settles before the third is queued behind the second: a naive chain that
    // clears itself when the first settles would let a fourth message jump the queue.
    await tick(35);
    chain.run(() => void out.push(4));
    await tick(20);
    assert.deepEqual(out, [1, 2, 3, 4]);
  });
});
