/**
 * Drives the real per-request state machines (request stage ExtProcStream, attempt stage
 * AttemptStream) through whole requests with real config, router and health tracker, and encodes
 * every answer they write with the static encoder. The encoder runs inside grpc-js, after a handler
 * returned, where a field or enum it does not know could only fail the request at runtime; this
 * test makes such a mistake fail here instead, and checks each encoding against proto-loader's.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { apiKeyYaml, providerYaml, secretYaml, validSnapshot } from '../../config/test-fixtures.js';
import { ConfigStore } from '../../config/store.js';
import type { ProcessingRequest, ProcessingRequest__Output } from '../../generated/envoy/service/ext_proc/v3/ProcessingRequest.js';
import type { ProcessingResponse } from '../../generated/envoy/service/ext_proc/v3/ProcessingResponse.js';
import { HealthTracker } from '../../routing/health.js';
import { PLAN_HEADER } from '../../routing/plan.js';
import { ResilientRouter } from '../../routing/router.js';
import { capturingLogger } from '../../routing/test-support.js';
import { AttemptStream } from '../attempt-stream.js';
import { ExtProcStream } from '../stream.js';
import { decodeProcessingRequest } from './decode-request.js';
import { encodeProcessingResponse } from './encode-response.js';
import { rawHeaders } from './samples.js';
import { decodeAnswerFull as decodeFull, protoLoaderProcess } from './test-support.js';

const KEY = 'tg-codec-test-key';
const snapshot = validSnapshot(
  providerYaml('a', 'type: openai\nendpoint: http://a.example:80/v1\ncredentialSecretRef: { name: creds, key: a }\nmodels:\n  - name: shared\n  - name: only-a') +
    providerYaml('b', 'type: openai\nendpoint: https://b.example/v1\ncredentialSecretRef: { name: creds, key: b }\nmodels:\n  - name: shared\n    upstreamModel: shared-at-b') +
    apiKeyYaml('team', 'secretRef: { name: keys, key: team }\nmodels: ["shared", "only-a"]') +
    secretYaml('creds', { a: 'cred-a', b: 'cred-b' }) +
    secretYaml('keys', { team: KEY }),
);

/** The side of a grpc-js duplex call the streams use; records what they write. */
class FakeCall extends EventEmitter {
  readonly written: ProcessingResponse[] = [];
  readonly metadata = new grpc.Metadata();
  writable = true;
  destroyed = false;
  write(answer: ProcessingResponse): boolean {
    this.written.push(answer);
    return true;
  }
  end(): void {
    this.writable = false;
  }
  /** Sends a message the way grpc-js would: bytes on the wire, decoded by the static decoder. */
  send(msg: ProcessingRequest): void {
    this.emit('data', decodeProcessingRequest(protoLoaderProcess.requestSerialize(msg)) satisfies ProcessingRequest__Output);
  }
}

type Duplex = ConstructorParameters<typeof ExtProcStream>[1];

/** Sends one message and waits for its answer (answers may be asynchronous). */
async function exchange(call: FakeCall, msg: ProcessingRequest): Promise<ProcessingResponse> {
  const count = call.written.length + 1;
  call.send(msg);
  for (let i = 0; i < 200 && call.written.length < count; i++) await new Promise((r) => setTimeout(r, 5));
  assert.equal(call.written.length, count, `no answer to ${Object.keys(msg).join('+')}`);
  return call.written[count - 1] as ProcessingResponse;
}

const headers = (method: string, path: string, extra: [string, string][] = []): ProcessingRequest => ({
  requestHeaders: {
    headers: { headers: rawHeaders([[':method', method], [':path', path], [':authority', 'gw.test'], ['content-type', 'application/json'], ['x-request-id', 'req-codec'], ...extra]) },
    endOfStream: method === 'GET',
  },
});
const auth: [string, string] = ['authorization', `Bearer ${KEY}`];
const body = (json: string): ProcessingRequest => ({ requestBody: { body: Buffer.from(json), endOfStream: true } });
const responseHeaders = (status: number, extra: [string, string][] = []): ProcessingRequest => ({
  responseHeaders: { headers: { headers: rawHeaders([[':status', String(status)], ...extra]) }, endOfStream: false },
});

describe('every answer the stream state machines write encodes like proto-loader', () => {
  it('request stage and attempt stage through successes, refusals and failover', async () => {
    const { logger } = capturingLogger();
    const router = new ResilientRouter({ health: new HealthTracker({ logger }), logger });
    const store = new ConfigStore();
    store.swap(snapshot);
    const deps = { store, logger, router, onFinalize: () => undefined };
    const all: ProcessingResponse[] = [];
    const requestStage = (): FakeCall => {
      const call = new FakeCall();
      new ExtProcStream(deps, call as unknown as Duplex);
      return call;
    };

    // Refusals decided on headers, the models list, a refusal decided on the body.
    for (const msg of [
      headers('POST', '/v1/chat/completions'),
      headers('POST', '/v1/chat/completions', [['authorization', 'Bearer wrong']]),
      headers('GET', '/v1/models', [auth]),
      headers('POST', '/v1/nothing-here', [auth]),
    ]) {
      const call = requestStage();
      await exchange(call, msg);
      all.push(...call.written);
    }
    for (const json of ['{not json', '{"model":"unknown","messages":[]}', '{"messages":[]}']) {
      const call = requestStage();
      await exchange(call, headers('POST', '/v1/chat/completions', [auth]));
      await exchange(call, body(json));
      all.push(...call.written);
    }

    // Whole requests, one per model: request stage, then attempt stages (failover on a 503).
    // The last one: the only provider's tries all failed (Envoy retried; the request stage answers
    // the summary error on a direct request).
    for (const [model, finalStatus] of [
      ['shared', 200],
      ['only-a', 200],
      ['only-a', 503],
    ] as const) {
      const call = requestStage();
      await exchange(call, headers('POST', '/v1/chat/completions', [auth]));
      const plan = planId(await exchange(call, body(`{"model":"${model}","messages":[{"role":"user","content":"hi ✓"}]}`)));
      for (const status of plan ? [503, 200] : []) {
        const attempt = new FakeCall();
        new AttemptStream({ router, logger }, attempt as unknown as Duplex);
        const first = await exchange(attempt, headers('POST', '/v1/chat/completions', [[PLAN_HEADER, plan as string], ['x-request-id', 'req-codec']]));
        // A body rewrite waits for the body; a headers-only rewrite skips it (mode override).
        if (first.requestHeaders && !first.requestHeaders.response) await exchange(attempt, body('{"model":"shared","messages":[]}'));
        await exchange(attempt, responseHeaders(status));
        await exchange(attempt, { responseBody: { body: Buffer.from('{}'), endOfStream: true } });
        attempt.emit('end');
        all.push(...attempt.written);
      }
      const final = await exchange(call, responseHeaders(finalStatus, [['content-type', 'application/json'], ['x-envoy-attempt-count', '3']]));
      if (!final.immediateResponse) await exchange(call, { responseBody: { body: Buffer.from('{"usage":{}}'), endOfStream: true } });
      call.emit('end');
      all.push(...call.written);
    }

    // An attempt whose plan is unknown is refused (final: x-envoy-ratelimited).
    const lost = new FakeCall();
    new AttemptStream({ router, logger }, lost as unknown as Duplex);
    await exchange(lost, headers('POST', '/v1/chat/completions', [[PLAN_HEADER, 'no-such-plan']]));
    all.push(...lost.written);

    for (const [i, answer] of all.entries()) {
      const ours = encodeProcessingResponse(answer);
      assert.deepStrictEqual(decodeFull(ours), decodeFull(protoLoaderProcess.responseSerialize(answer)), `answer ${i}: ${JSON.stringify(answer)}`);
    }
    // The walk must have reached the interesting shapes, or it proves little.
    const kinds = new Set(all.map((a) => Object.keys(a).sort().join('+')));
    assert.ok(all.some((a) => a.immediateResponse), 'an immediate response');
    assert.ok(all.some((a) => a.requestBody?.response?.headerMutation), 'a forward answer with header mutations');
    assert.ok(all.some((a) => a.dynamicMetadata), `an answer with dynamic metadata (kinds: ${[...kinds].join(', ')})`);
    assert.ok(all.length >= 20, `answers: ${all.length}`);
  });
});

/** The plan id the request stage put on the forwarded request, if it planned attempts. */
function planId(answer: ProcessingResponse | undefined): string | undefined {
  const set = answer?.requestBody?.response?.headerMutation?.setHeaders ?? answer?.requestHeaders?.response?.headerMutation?.setHeaders ?? [];
  const h = set.find((o) => o.header?.key === PLAN_HEADER)?.header;
  return h?.rawValue ? Buffer.from(h.rawValue as Uint8Array).toString('latin1') : h?.value;
}
