/**
 * The floor of any Node ext_proc: a grpc-js ExternalProcessor that does nothing. It reads only which
 * phase a message is (request/response headers, body or trailers) and answers "continue" for that
 * phase with a prebuilt buffer; no headers are decoded, nothing is looked up or logged. Same grpc-js
 * server options and HTTP/2 windows as Tollgate's, so what Tollgate costs above this row is its own
 * work, and what this row costs above bare Envoy is the exchange itself (Envoy's gRPC client,
 * HTTP/2, grpc-js, the wake-ups on both sides).
 *
 * Usage: node dist/bench/echo-extproc.js unix:/path/to.sock   (serving once the socket exists)
 */
import * as grpc from '@grpc/grpc-js';
import { WireReader, readTag } from '../src/extproc/codec/wire.js';
import { EXTPROC_WINDOWS, allowEnvoyStreamResets, widenFlowControlWindows } from '../src/extproc/flow-control.js';
import { EXTPROC_SERVER_OPTIONS, loadExternalProcessorService } from '../src/extproc/server.js';

/** ProcessingRequest fields 2..7 (request_headers .. response_trailers) are answered by field n - 1. */
const FIRST_PHASE = 2;
const LAST_PHASE = 7;
const ANSWERS: readonly Buffer[] = Array.from({ length: LAST_PHASE + 1 }, (_, field) =>
  // An empty HeadersResponse / BodyResponse / TrailersResponse: continue unchanged.
  field >= FIRST_PHASE ? Buffer.from([((field - 1) << 3) | 2, 0]) : Buffer.alloc(0),
);

/** The phase field number of one ProcessingRequest (other fields, such as attributes, are skipped). */
export function phaseOf(buf: Buffer): number {
  const r = new WireReader(buf);
  while (r.pos < r.end) {
    const tag = readTag(r);
    const field = tag >>> 3;
    if (field >= FIRST_PHASE && field <= LAST_PHASE) return field;
    r.skipField(tag & 7);
  }
  throw new Error('ProcessingRequest without a phase');
}

/** The answer to a message of `phase`. */
export function answerFor(phase: number): Buffer {
  const answer = ANSWERS[phase];
  if (!answer || answer.length === 0) throw new Error(`no answer for ProcessingRequest field ${phase}`);
  return answer;
}

async function main(): Promise<void> {
  const address = process.argv[2];
  if (!address) throw new Error('usage: echo-extproc.js unix:/path/to.sock');
  const server = new grpc.Server(EXTPROC_SERVER_OPTIONS);
  const service = loadExternalProcessorService();
  const process_ = service['Process'];
  if (!process_) throw new Error('ExternalProcessor has no Process method');
  server.addService(
    { Process: { ...process_, requestDeserialize: phaseOf, responseSerialize: answerFor } },
    {
      Process: (call: grpc.ServerDuplexStream<number, number>) => {
        call.on('data', (phase: number) => call.write(phase));
        call.on('end', () => call.end());
        call.on('error', () => undefined);
      },
    },
  );
  allowEnvoyStreamResets(server);
  await new Promise<void>((resolve, reject) => server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())));
  widenFlowControlWindows(server, EXTPROC_WINDOWS);
  process.on('SIGTERM', () => server.forceShutdown());
}

if (process.argv[1]?.endsWith('echo-extproc.js')) {
  main().catch((err: unknown) => {
    process.stderr.write(`echo ext_proc failed: ${String(err instanceof Error ? err.stack : err)}\n`);
    process.exit(1);
  });
}
