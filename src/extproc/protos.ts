/** Where Envoy's API protos come from: the registry package @grpc/grpc-js-xds (never copied). */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const require = createRequire(import.meta.url);

/** Directories holding Envoy's API protos and their imports. */
export function protoIncludeDirs(): string[] {
  const root = join(dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');
  return ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => join(root, d));
}

/** Loads one of Envoy's service protos with cheap decoding: no defaults, enums and 64-bit ints as strings, oneof names set. */
export function loadEnvoyProto(file: string): grpc.GrpcObject {
  const definition = protoLoader.loadSync(file, {
    includeDirs: protoIncludeDirs(),
    keepCase: false,
    longs: String,
    enums: String,
    defaults: false,
    oneofs: true,
  });
  return grpc.loadPackageDefinition(definition);
}
