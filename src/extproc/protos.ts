/** Where Envoy's API protos come from: the registry package @grpc/grpc-js-xds (never copied). */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);

/** Directories holding Envoy's API protos and their imports. */
export function protoIncludeDirs(): string[] {
  const root = join(dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');
  return ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => join(root, d));
}
