// Original file: node_modules/@grpc/grpc-js-xds/deps/xds/udpa/annotations/versioning.proto


export interface VersioningAnnotation {
  'previousMessageType'?: (string);
}

export interface VersioningAnnotation__Output {
  'previousMessageType'?: (string);
}
