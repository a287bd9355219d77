/**
 * Envoy's gRPC access log of the attempt listener (envoy.service.accesslog.v3.AccessLogService),
 * received once per finished attempt, in batches. It tells what the attempt stage cannot see: how
 * an attempt whose response had started ended (response flags). A break after the first byte on
 * the provider's side (reset, connection closed, protocol error, idle timeout) counts as a failure
 * of that target; a client that hung up does not.
 *
 * The attempt stage tags each attempt with dynamic metadata `tollgate.target` (the target id), so
 * no request state has to live until the log arrives.
 */
import * as grpc from '@grpc/grpc-js';
import type { ConfigStore } from '../config/store.js';
import type { Logger } from '../observability/logger.js';
import type { HealthTracker } from '../routing/health.js';
import { loadEnvoyProto } from './protos.js';

/** Dynamic metadata namespace the attempt stage writes (envoy.yaml receiving_namespaces). */
export const METADATA_NAMESPACE = 'tollgate';

/** The parts of an HTTPAccessLogEntry this module reads (proto-loader object form). */
export interface AttemptLogEntry {
  commonProperties?: {
    responseFlags?: Partial<Record<ResponseFlag, boolean>>;
    metadata?: { filterMetadata?: Record<string, { fields?: Record<string, { stringValue?: string }> }> };
  };
  response?: { responseCode?: { value?: number } };
}

type ResponseFlag =
  | 'upstreamRemoteReset'
  | 'upstreamConnectionTermination'
  | 'upstreamProtocolError'
  | 'streamIdleTimeout'
  | 'upstreamRequestTimeout'
  | 'downstreamConnectionTermination'
  | 'downstreamRemoteReset';

const UPSTREAM_BREAK: readonly ResponseFlag[] = ['upstreamRemoteReset', 'upstreamConnectionTermination', 'upstreamProtocolError', 'streamIdleTimeout', 'upstreamRequestTimeout'];
const CLIENT_GONE: readonly ResponseFlag[] = ['downstreamConnectionTermination', 'downstreamRemoteReset'];

/** How a 2xx attempt ended, by target; undefined for other statuses, client hang-ups and untagged entries. */
export function streamEnd(entry: AttemptLogEntry): { target: string; broken: false } | { target: string; broken: true; reason: string } | undefined {
  const status = entry.response?.responseCode?.value ?? 0;
  if (status < 200 || status >= 300) return undefined;
  const target = entry.commonProperties?.metadata?.filterMetadata?.[METADATA_NAMESPACE]?.fields?.['target']?.stringValue;
  if (!target) return undefined;
  const flags = entry.commonProperties?.responseFlags ?? {};
  if (CLIENT_GONE.some((f) => flags[f])) return undefined;
  const reason = UPSTREAM_BREAK.find((f) => flags[f]);
  return reason ? { target, broken: true, reason } : { target, broken: false };
}

/** The target whose 2xx response broke off on the provider's side, or undefined. */
export function brokenAfterFirstByte(entry: AttemptLogEntry): { target: string; reason: string } | undefined {
  const end = streamEnd(entry);
  return end?.broken ? { target: end.target, reason: end.reason } : undefined;
}

/** Registers the AccessLogService on the ext_proc gRPC server. */
export function addAttemptLogService(server: grpc.Server, deps: { store: ConfigStore; health: HealthTracker; logger: Logger }): void {
  const pkg = loadEnvoyProto('envoy/service/accesslog/v3/als.proto') as unknown as {
    envoy: { service: { accesslog: { v3: { AccessLogService: grpc.ServiceClientConstructor } } } };
  };
  server.addService(pkg.envoy.service.accesslog.v3.AccessLogService.service, {
    StreamAccessLogs: (
      call: grpc.ServerReadableStream<{ httpLogs?: { logEntry?: AttemptLogEntry[] } }, Record<string, never>>,
      callback: grpc.sendUnaryData<Record<string, never>>,
    ) => {
      call.on('data', (msg: { httpLogs?: { logEntry?: AttemptLogEntry[] } }) => {
        const config = deps.store.current()?.resilience;
        if (!config) return;
        for (const entry of msg.httpLogs?.logEntry ?? []) {
          const end = streamEnd(entry);
          if (!end) continue;
          if (end.broken) deps.health.onBrokenStream(end.target, end.reason, config);
          else deps.health.onCleanStream(end.target);
        }
      });
      call.on('end', () => callback(null, {}));
      call.on('error', () => undefined);
    },
  });
}
