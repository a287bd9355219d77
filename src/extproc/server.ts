/**
 * The gRPC server implementing envoy.service.ext_proc.v3.ExternalProcessor. Envoy's protos are
 * loaded from the registry package @grpc/grpc-js-xds (its envoy-api tree), never copied.
 */
import * as grpc from '@grpc/grpc-js';
import type { ProcessingRequest__Output } from '../generated/envoy/service/ext_proc/v3/ProcessingRequest.js';
import type { ProcessingResponse } from '../generated/envoy/service/ext_proc/v3/ProcessingResponse.js';
import { addAttemptLogService } from './attempt-log.js';
import { AttemptStream } from './attempt-stream.js';
import { withStaticCodecs } from './codec/service.js';
import { EXTPROC_WINDOWS, allowEnvoyStreamResets, widenFlowControlWindows } from './flow-control.js';
import { loadEnvoyProto } from './protos.js';
import { ExtProcStream, type StreamDeps } from './stream.js';

/** gRPC metadata Envoy sends (envoy/envoy.yaml initial_metadata): which filter stage this stream is. */
export const STAGE_METADATA = 'x-tollgate-stage';


/** Loads the ExternalProcessor service definition. */
export function loadExternalProcessorService(): grpc.ServiceDefinition {
  const pkg = loadEnvoyProto('envoy/service/ext_proc/v3/external_processor.proto') as unknown as {
    envoy: { service: { ext_proc: { v3: { ExternalProcessor: grpc.ServiceClientConstructor } } } };
  };
  return pkg.envoy.service.ext_proc.v3.ExternalProcessor.service;
}

/** grpc-js options of the ext_proc server (the bench's do-nothing floor uses the same). */
export const EXTPROC_SERVER_OPTIONS: grpc.ServerOptions = {
  'grpc.max_receive_message_length': 64 * 1024 * 1024,
  'grpc.max_send_message_length': 64 * 1024 * 1024,
  'grpc.enable_channelz': 0,
  // Envoy keeps one HTTP/2 connection open; keepalive pings detect a dead peer.
  'grpc.keepalive_time_ms': 30_000,
};

let requestsInFlight = 0;

/** Requests in flight in this process: open request-stage ext_proc streams (drain on shutdown). */
export function inflightRequests(): number {
  return requestsInFlight;
}

/** Counts a request-stage stream until it ends, whichever way it ends. */
function track(call: grpc.ServerDuplexStream<ProcessingRequest__Output, ProcessingResponse>): void {
  requestsInFlight++;
  let open = true;
  const release = (): void => {
    if (!open) return;
    open = false;
    requestsInFlight--;
  };
  call.once('end', release);
  call.once('cancelled', release);
  call.once('error', release);
  call.once('close', release);
}

/** Starts the ext_proc server on `address` (`unix:/path` or `host:port`); resolves the bound port. */
export async function startExtProcServer(address: string, deps: StreamDeps): Promise<{ server: grpc.Server; port: number }> {
  const server = new grpc.Server(EXTPROC_SERVER_OPTIONS);
  // Process uses the hand-written codecs in ./codec (hot path); the service shape is proto-loader's.
  server.addService(withStaticCodecs(loadExternalProcessorService()), {
    Process: (call: grpc.ServerDuplexStream<ProcessingRequest__Output, ProcessingResponse>) => {
      if (call.metadata.get(STAGE_METADATA)[0] === 'attempt') new AttemptStream(deps, call);
      else {
        track(call);
        new ExtProcStream(deps, call);
      }
    },
  });
  addAttemptLogService(server, { store: deps.store, health: deps.router.health, logger: deps.logger });
  allowEnvoyStreamResets(server);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, boundPort) => (err ? reject(err) : resolve(boundPort)));
  });
  widenFlowControlWindows(server, EXTPROC_WINDOWS);
  return { server, port };
}

/** Stops accepting streams and waits for open ones, up to `graceMs`, then forces. */
export function stopExtProcServer(server: grpc.Server, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
