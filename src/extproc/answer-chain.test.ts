import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AnswerChain, OrderedResponder } from './answer-chain.js';

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

describe('OrderedResponder', () => {
  it('answers a throwing or rejecting step with the fail-closed answer, in order', async () => {
    const written: string[] = [];
    const sink = { writable: true, destroyed: false, write: (a: string) => written.push(a), end: () => written.push('END') };
    const responder = new OrderedResponder<string, string>(
      sink,
      (msg) => {
        if (msg === 'throw') throw new Error('bug');
        if (msg === 'reject') return Promise.reject(new Error('bug'));
        return msg === 'slow' ? tick(10).then(() => 'slow-answer') : `${msg}-answer`;
      },
      () => 'refused',
    );
    responder.receive('slow');
    responder.receive('reject');
    responder.receive('throw');
    responder.receive('ok');
    await tick(30);
    assert.deepEqual(written, ['slow-answer', 'refused', 'refused', 'ok-answer']);
  });

  it('ends the call right after the answer that asked for it, and answers nothing after', async () => {
    const written: string[] = [];
    const sink = { writable: true, destroyed: false, write: (a: string) => written.push(a), end: () => written.push('END') };
    let responder: OrderedResponder<string, string> | undefined;
    responder = new OrderedResponder<string, string>(
      sink,
      (msg) => {
        if (msg === 'last') {
          responder?.endAfterThisAnswer();
          return tick(5).then(() => 'last-answer');
        }
        return `${msg}-answer`;
      },
      () => 'refused',
    );
    responder.receive('first');
    responder.receive('last');
    responder.receive('queued');
    await tick(20);
    responder.receive('later');
    await tick(5);
    assert.deepEqual(written, ['first-answer', 'last-answer', 'END']);
  });
});
