/**
 * Envoy's gRPC access log (envoy.service.accesslog.v3.AccessLogService), received in batches: one
 * entry per finished request on the direct path (`tollgate_direct`) and one per attempt on the
 * failover path (`tollgate_attempts`). It tells what the attempt stage cannot see: how
 * an attempt whose response had started ended (response flags). A break after the first byte on
 * the provider's side (reset, connection closed, protocol error, idle timeout) counts as a failure
 * of that target; a client that hung up does not. A failure to reach the provider at all (connect,
 * TLS, DNS, reset before any byte) counts against the whole provider (or discovered endpoint).
 *
 * The attempt stage tags each attempt with dynamic metadata `tollgate.target` (the target id), so
 * no request state has to live until the log arrives.
 */
import * as grpc from '@grpc/grpc-js';
import type { ConfigStore } from '../config/store.js';
import type { Logger } from '../observability/logger.js';
import type { HealthTracker } from '../routing/health.js';
import { accessLogDecoder, ResponseFlag, type AccessLogEntrySummary, type ResponseFlagName } from './codec/decode-access-log.js';
import { loadEnvoyProto } from './protos.js';

/** Dynamic metadata namespace the attempt stage writes (envoy.yaml receiving_namespaces). */
export const METADATA_NAMESPACE = 'tollgate';

/**
 * The parts of an HTTPAccessLogEntry this module reads, as the static decoder
 * (codec/decode-access-log.ts) extracts them: response code, response flag bits, `tollgate.target`.
 */
export type AttemptLogEntry = AccessLogEntrySummary;

/** Decodes StreamAccessLogsMessage bytes into one AttemptLogEntry per HTTP log entry. */
export const decodeAttemptLogs = accessLogDecoder(METADATA_NAMESPACE, 'target');

/** Flags of a break on the provider's side, in the order the reported reason is picked. */
const UPSTREAM_BREAK: readonly ResponseFlagName[] = ['upstreamRemoteReset', 'upstreamConnectionTermination', 'upstreamProtocolError', 'streamIdleTimeout', 'upstreamRequestTimeout'];
const CLIENT_GONE = ResponseFlag.downstreamConnectionTermination | ResponseFlag.downstreamRemoteReset;

/**
 * Connection-level failures, in the order the reported reason is picked: the provider (or the
 * discovered endpoint) could not be reached at all, whatever the model: connect refused or timed
 * out, TLS handshake failed (both upstream_connection_failure), DNS failed, or the connection was
 * reset or closed before any response byte.
 */
const CONNECTION_LEVEL: readonly ResponseFlagName[] = ['upstreamConnectionFailure', 'dnsResolutionFailure', 'upstreamConnectionTermination', 'upstreamRemoteReset'];

/**
 * A tagged attempt (or direct request) that failed at the connection level before any response
 * byte: Envoy's own 503 with one of CONNECTION_LEVEL's flags. These count against the whole
 * provider (HealthTracker.onConnectionFailure), not only the model the request named.
 */
export function connectionFailure(entry: AttemptLogEntry): { target: string; reason: string } | undefined {
  const target = entry.target;
  if (!target || entry.responseCode !== 503 || (entry.flags & CLIENT_GONE) !== 0) return undefined;
  const reason = CONNECTION_LEVEL.find((f) => (entry.flags & ResponseFlag[f]) !== 0);
  return reason ? { target, reason } : undefined;
}

/** How a 2xx attempt ended, by target; undefined for other statuses, client hang-ups and untagged entries. */
export function streamEnd(entry: AttemptLogEntry): { target: string; broken: false } | { target: string; broken: true; reason: string } | undefined {
  const status = entry.responseCode;
  if (status < 200 || status >= 300) return undefined;
  const target = entry.target;
  if (!target) return undefined;
  const flags = entry.flags;
  if ((flags & CLIENT_GONE) !== 0) return undefined;
  if (flags === 0) return { target, broken: false };
  const reason = UPSTREAM_BREAK.find((f) => (flags & ResponseFlag[f]) !== 0);
  return reason ? { target, broken: true, reason } : { target, broken: false };
}

/** The target whose 2xx response broke off on the provider's side, or undefined. */
export function brokenAfterFirstByte(entry: AttemptLogEntry): { target: string; reason: string } | undefined {
  const end = streamEnd(entry);
  return end?.broken ? { target: end.target, reason: end.reason } : undefined;
}

/** proto-loader's AccessLogService definition, as loaded (the codec tests encode with it). */
export function loadAccessLogService(): grpc.ServiceDefinition {
  const pkg = loadEnvoyProto('envoy/service/accesslog/v3/als.proto') as unknown as {
    envoy: { service: { accesslog: { v3: { AccessLogService: grpc.ServiceClientConstructor } } } };
  };
  return pkg.envoy.service.accesslog.v3.AccessLogService.service;
}

/**
 * A copy of the AccessLogService definition whose StreamAccessLogs decodes with the static
 * decoder (only what streamEnd reads). The service shape, client-side functions and the (empty)
 * response's serializer stay proto-loader's.
 */
export function withAccessLogDecoder(service: grpc.ServiceDefinition): grpc.ServiceDefinition {
  const method = service['StreamAccessLogs'];
  if (!method) throw new Error('AccessLogService definition has no StreamAccessLogs method');
  return { ...service, StreamAccessLogs: { ...method, requestDeserialize: decodeAttemptLogs } };
}

/** Registers the AccessLogService on the ext_proc gRPC server. */
export function addAttemptLogService(server: grpc.Server, deps: { store: ConfigStore; health: HealthTracker; logger: Logger }): void {
  server.addService(withAccessLogDecoder(loadAccessLogService()), {
    StreamAccessLogs: (call: grpc.ServerReadableStream<AttemptLogEntry[], Record<string, never>>, callback: grpc.sendUnaryData<Record<string, never>>) => {
      call.on('data', (entries: AttemptLogEntry[]) => {
        const config = deps.store.current()?.resilience;
        if (!config) return;
        for (const entry of entries) {
          const unreachable = connectionFailure(entry);
          if (unreachable) deps.health.onConnectionFailure(unreachable.target, unreachable.reason, config);
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
