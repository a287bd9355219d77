/**
 * Envoy-shaped StreamAccessLogsMessage objects (proto-loader's input shape) for the access log
 * decoder's tests and bench/codec-micro.ts: HTTP entries populated the way Envoy 1.40's gRPC access
 * logger fills them (common properties with timings and addresses, TLS, request and response with
 * headers, dynamic metadata of several namespaces). Nothing here is secret.
 */

/** A protobufjs `fromObject` input; plain JSON-like data. */
export type ProtoObject = { [key: string]: unknown };

const duration = (ms: number): ProtoObject => ({ seconds: String(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1_000_000 });
const socket = (address: string, portValue: number): ProtoObject => ({ socketAddress: { address, portValue } });

/** A Struct of string fields. */
export function stringStruct(fields: Record<string, string>): ProtoObject {
  return { fields: Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, { stringValue: v }])) };
}

/** Options of one sample entry. */
export interface SampleEntry {
  status?: number;
  /** ResponseFlags fields to set (camelCase names as in proto-loader objects). */
  flags?: string[];
  /** filter_metadata; undefined leaves metadata out. */
  filterMetadata?: Record<string, ProtoObject>;
}

/** filter_metadata as Envoy logs it for a request Tollgate tagged with `target`. */
export function taggedMetadata(target: string): Record<string, ProtoObject> {
  return {
    'envoy.filters.http.ext_proc': stringStruct({ 'request.path': '/v1/chat/completions' }),
    tollgate: { fields: { target: { stringValue: target }, plan: { stringValue: '8f14e45f-ceea-467f-a0e6-0d1b6c7f3a21' }, attempt: { numberValue: 2 } } },
    'envoy.lb': { fields: { canary: { boolValue: false }, weights: { listValue: { values: [{ numberValue: 1 }, { nullValue: 'NULL_VALUE' }] } } } },
  };
}

/** One realistic HTTPAccessLogEntry (about 1 KiB on the wire). */
export function httpEntry(opts: SampleEntry = {}): ProtoObject {
  const flags = Object.fromEntries((opts.flags ?? []).map((f) => [f, true]));
  const common: ProtoObject = {
    sampleRate: 1,
    downstreamRemoteAddress: socket('127.0.0.1', 53122),
    downstreamLocalAddress: socket('127.0.0.1', 8080),
    downstreamDirectRemoteAddress: socket('127.0.0.1', 53122),
    tlsProperties: {
      tlsVersion: 'TLSv1_3',
      tlsCipherSuite: { value: 4865 },
      tlsSniHostname: 'gateway.example.test',
      peerCertificateProperties: { subjectAltName: [{ dns: 'client.example.test' }], subject: 'CN=client', issuer: 'CN=test-ca' },
    },
    startTime: { seconds: '1795608000', nanos: 123_456_000 },
    timeToLastRxByte: duration(2),
    timeToFirstUpstreamTxByte: duration(3),
    timeToLastUpstreamTxByte: duration(3),
    timeToFirstUpstreamRxByte: duration(412),
    timeToLastUpstreamRxByte: duration(2870),
    timeToFirstDownstreamTxByte: duration(413),
    timeToLastDownstreamTxByte: duration(2871),
    upstreamRemoteAddress: socket('203.0.113.7', 443),
    upstreamLocalAddress: socket('10.0.0.4', 41022),
    upstreamCluster: 'upstream_https',
    responseFlags: flags,
    upstreamTransportFailureReason: '',
    routeName: 'provider_https',
    customTags: { env: 'test' },
    duration: duration(2871),
    upstreamRequestAttemptCount: 1,
    connectionTerminationDetails: '',
    streamId: '5f0c1c9e-8a53-4f57-9d0f-2b7c7f4f9a11',
    downstreamWireBytesSent: '18211',
    downstreamWireBytesReceived: '1402',
    upstreamWireBytesSent: '1388',
    upstreamWireBytesReceived: '18034',
    accessLogType: 'DownstreamEnd',
  };
  if (opts.filterMetadata) common['metadata'] = { filterMetadata: opts.filterMetadata };
  return {
    commonProperties: common,
    protocolVersion: 'HTTP11',
    request: {
      requestMethod: 'POST',
      scheme: 'https',
      authority: 'api.provider.example',
      path: '/v1/chat/completions',
      userAgent: 'OpenAI/JS 6.9.1',
      forwardedFor: '127.0.0.1',
      requestId: '5f0c1c9e-8a53-4f57-9d0f-2b7c7f4f9a11',
      originalPath: '/v1/chat/completions',
      requestHeadersBytes: '412',
      requestBodyBytes: '1021',
      requestHeaders: { 'x-request-id': '5f0c1c9e-8a53-4f57-9d0f-2b7c7f4f9a11', 'content-type': 'application/json' },
    },
    response: {
      ...(opts.status === undefined ? {} : { responseCode: { value: opts.status } }),
      responseHeadersBytes: '233',
      responseBodyBytes: '17804',
      responseHeaders: { 'content-type': 'text/event-stream', 'x-request-id': '5f0c1c9e-8a53-4f57-9d0f-2b7c7f4f9a11' },
      responseCodeDetails: 'via_upstream',
    },
  };
}

/** A StreamAccessLogsMessage with an identifier and the given HTTP entries (Envoy sends the identifier on a stream's first message). */
export function httpLogsMessage(entries: ProtoObject[], withIdentifier = true): ProtoObject {
  return {
    ...(withIdentifier ? { identifier: { node: { id: 'tollgate-envoy', cluster: 'tollgate', userAgentName: 'envoy', metadata: stringStruct({ role: 'gateway' }) }, logName: 'tollgate_attempts' } } : {}),
    httpLogs: { logEntry: entries },
  };
}
