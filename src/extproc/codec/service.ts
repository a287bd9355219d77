/**
 * Puts the static codecs on the ExternalProcessor service definition grpc-js serves: the same
 * definition proto-loader built, with `Process`'s request decoder and response encoder replaced.
 * Everything else (path, streaming flags, the client-side functions) stays proto-loader's.
 */
import type * as grpc from '@grpc/grpc-js';
import { decodeProcessingRequest } from './decode-request.js';
import { encodeProcessingResponse } from './encode-response.js';

/** Returns a copy of `service` whose Process method uses the static codecs. */
export function withStaticCodecs(service: grpc.ServiceDefinition): grpc.ServiceDefinition {
  const process = service['Process'];
  if (!process) throw new Error('ExternalProcessor service definition has no Process method');
  return {
    ...service,
    Process: { ...process, requestDeserialize: decodeProcessingRequest, responseSerialize: encodeProcessingResponse },
  };
}
