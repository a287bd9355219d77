/**
 * Micro-benchmark of the ext_proc Process codec: the static codecs (src/extproc/codec) against
 * proto-loader's path exactly as grpc-js calls it (requestDeserialize = toObject(decode()),
 * responseSerialize = encode(fromObject()).finish()). A few seconds, one core:
 *
 *   npx tsc -p . && node dist/bench/codec-micro.js [--ms=100] [--only=<substring of a row name>]
 *
 * Reports ns per call (per entry for access log batches; median of 5 timed rounds) and young-generation GCs per 100k calls (a proxy
 * for allocation). Numbers from a shared machine: compare the two columns, not across runs.
 */
import { PerformanceObserver } from 'node:perf_hooks';
import { decodeAttemptLogs, loadAccessLogService } from '../src/extproc/attempt-log.js';
import { httpEntry, httpLogsMessage, taggedMetadata } from '../src/extproc/codec/access-log-samples.js';
import { decodeProcessingRequest } from '../src/extproc/codec/decode-request.js';
import { encodeProcessingResponse } from '../src/extproc/codec/encode-response.js';
import { requestBodyMessage, requestHeadersMessage, responseHeadersMessage } from '../src/extproc/codec/samples.js';
import { continueResponseBody, errorResponse, forwardRequestBody } from '../src/extproc/responses.js';
import { loadExternalProcessorService } from '../src/extproc/server.js';
import { gatewayError } from '../src/errors.js';

const roundMs = Number(process.argv.find((a) => a.startsWith('--ms='))?.slice(5) ?? 100);
const ROUNDS = 5;

const protoLoader = loadExternalProcessorService()['Process'];
if (!protoLoader) throw new Error('no Process method');

let gcs = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) if ((e as unknown as { detail?: { kind?: number } }).detail?.kind === 1) gcs++;
}).observe({ entryTypes: ['gc'] });

let sink: unknown;

/** GC entries reach the observer asynchronously: let them in before reading the count. */
const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 20));

/** Median ns per call of `fn` and minor GCs per 100k calls. */
async function measure(fn: () => unknown): Promise<{ ns: number; gcPer100k: number }> {
  // Calibrate a batch size that takes ~10 ms, warm up for one round.
  let batch = 1;
  for (;;) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < batch; i++) sink = fn();
    if (Number(process.hrtime.bigint() - t0) > 10e6) break;
    batch *= 2;
  }
  const samples: number[] = [];
  let calls = 0;
  await settle();
  const gc0 = gcs;
  for (let round = 0; round <= ROUNDS; round++) {
    const deadline = process.hrtime.bigint() + BigInt(roundMs) * 1_000_000n;
    let n = 0;
    const t0 = process.hrtime.bigint();
    let t1 = t0;
    while (t1 < deadline) {
      for (let i = 0; i < batch; i++) sink = fn();
      n += batch;
      t1 = process.hrtime.bigint();
    }
    if (round > 0) {
      samples.push(Number(t1 - t0) / n);
      calls += n;
    }
  }
  await settle();
  samples.sort((a, b) => a - b);
  return { ns: samples[ROUNDS >> 1] as number, gcPer100k: ((gcs - gc0) * 100_000) / calls };
}

const headersWire = protoLoader.requestSerialize(requestHeadersMessage());
const responseHeadersWire = protoLoader.requestSerialize(responseHeadersMessage());
const bodyWire = protoLoader.requestSerialize(requestBodyMessage(1024));
const forward = forwardRequestBody(
  [
    [':authority', 'api.provider.example:443'],
    [':path', '/v1/chat/completions'],
    ['authorization', 'Bearer upstream-credential-0123456789'],
    ['x-tollgate-route', 'https'],
    ['x-tollgate-plan', '8f14e45f-ceea-467f-a0e6-0d1b6c7f3a21'],
    ['content-length', '1021'],
  ],
  ['x-api-key'],
  requestBodyMessage(1021).requestBody?.body as Buffer,
);
const refusal = errorResponse(gatewayError('rate_limit_exceeded', 'Rate limit reached for requests per minute.', { 'retry-after': '12' }), '5f0c1c9e-8a53-4f57-9d0f-2b7c7f4f9a11');

// Envoy's gRPC access log: realistic full HTTP entries (~1 KiB each), as one entry per message and
// as a batch (Envoy flushes every 0.25 s); rows are per entry.
const accessLog = loadAccessLogService()['StreamAccessLogs'];
if (!accessLog) throw new Error('no StreamAccessLogs method');
const logEntry = (i: number): ReturnType<typeof httpEntry> => httpEntry({ status: 200, ...(i % 8 === 7 ? { flags: ['upstreamRemoteReset'] } : {}), filterMetadata: taggedMetadata(`default/provider-${i % 3}`) });
const logOne = accessLog.requestSerialize(httpLogsMessage([logEntry(0)], false));
const BATCH = 16;
const logBatch = accessLog.requestSerialize(httpLogsMessage(Array.from({ length: BATCH }, (_, i) => logEntry(i)), false));

const cases: [string, () => unknown, () => unknown, number?][] = [
  ['decode request headers (15 headers)', () => decodeProcessingRequest(headersWire), () => protoLoader.requestDeserialize(headersWire)],
  ['decode response headers (4 headers)', () => decodeProcessingRequest(responseHeadersWire), () => protoLoader.requestDeserialize(responseHeadersWire)],
  ['decode request body (1 KiB)', () => decodeProcessingRequest(bodyWire), () => protoLoader.requestDeserialize(bodyWire)],
  ['encode forward answer (6 headers, 1 KiB body)', () => encodeProcessingResponse(forward), () => protoLoader.responseSerialize(forward)],
  ['encode {responseBody:{}} continue', () => encodeProcessingResponse(continueResponseBody()), () => protoLoader.responseSerialize(continueResponseBody())],
  ['encode 429 immediate response', () => encodeProcessingResponse(refusal), () => protoLoader.responseSerialize(refusal)],
  [`decode access log, 1 entry per message (${logOne.length} B), per entry`, () => decodeAttemptLogs(logOne), () => accessLog.requestDeserialize(logOne)],
  [`decode access log, ${BATCH} entries per message (${logBatch.length} B), per entry`, () => decodeAttemptLogs(logBatch), () => accessLog.requestDeserialize(logBatch), BATCH],
];

const rows: string[] = [];
rows.push(`| operation | static codec ns | proto-loader ns | speed-up | minor GCs /100k (static / proto-loader) |`);
rows.push(`|---|---:|---:|---:|---:|`);
const only = process.argv.find((a) => a.startsWith('--only='))?.slice(7);
for (const [name, ours, theirs, per = 1] of cases) {
  if (only && !name.includes(only)) continue;
  const a = await measure(ours);
  const b = await measure(theirs);
  rows.push(`| ${name} | ${(a.ns / per).toFixed(0)} | ${(b.ns / per).toFixed(0)} | ${(b.ns / a.ns).toFixed(1)}x | ${a.gcPer100k.toFixed(1)} / ${b.gcPer100k.toFixed(1)} |`);
}
if (sink === undefined) throw new Error('unreachable');
process.stdout.write(`Node ${process.version}, ${roundMs} ms x ${ROUNDS} rounds per cell (median)\n${rows.join('\n')}\n`);
