#!/usr/bin/env bash
# Regenerates TypeScript types for Envoy's ext_proc protos into src/generated (never edit by hand).
# Types only: at run time the protos are loaded with @grpc/proto-loader from the same registry package.
# No --defaults: the server loads with defaults off (less work per message), so fields stay optional.
set -euo pipefail
cd "$(dirname "$0")/.."
D=node_modules/@grpc/grpc-js-xds/deps
rm -rf src/generated
npx proto-loader-gen-types --longs=String --enums=String --oneofs --grpcLib=@grpc/grpc-js \
  -I "$D/envoy-api" -I "$D/xds" -I "$D/googleapis" -I "$D/protoc-gen-validate" \
  -O src/generated envoy/service/ext_proc/v3/external_processor.proto
# NodeNext ESM needs explicit .js specifiers.
find src/generated -name '*.ts' -print0 | xargs -0 sed -i -E "s#(from '\.[^']*)';#\1.js';#"
