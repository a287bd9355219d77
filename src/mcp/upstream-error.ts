/** Failures talking to an upstream MCP server, classified for the client's JSON-RPC error. */

export type UpstreamErrorKind = 'timeout' | 'unavailable' | 'upstream_error';

/** A failure talking to an upstream, classified for the client's JSON-RPC error. */
export class UpstreamError extends Error {
  constructor(
    readonly kind: UpstreamErrorKind,
    message: string,
    /** The upstream's own JSON-RPC error code (kind upstream_error). */
    readonly code?: number,
  ) {
    super(message);
    this.name = 'UpstreamError';
  }
}
