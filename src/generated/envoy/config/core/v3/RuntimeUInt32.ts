// Original file: node_modules/@grpc/grpc-js-xds/deps/envoy-api/envoy/config/core/v3/base.proto


export interface RuntimeUInt32 {
  'defaultValue'?: (number);
  'runtimeKey'?: (string);
}

export interface RuntimeUInt32__Output {
  'defaultValue'?: (number);
  'runtimeKey'?: (string);
}
