#!/usr/bin/env bash
# Regenerates Sources/MegatronServer/GRPC/Generated from proto/tei.proto: protoc (Debian's protobuf-compiler) with
# swift-protobuf's and grpc-swift-protobuf's plugins, built once into .build/protoc-plugins (about 10 minutes; the
# generated code is committed so that no build needs them).
#   scripts/generate_grpc.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v protoc >/dev/null || { apt-get update -qq && apt-get install -y -qq protobuf-compiler; }
plugins=.build/protoc-plugins
if [ ! -x "$plugins/.build/release/protoc-gen-grpc-swift-2" ] || [ ! -x "$plugins/.build/release/protoc-gen-swift" ]; then
  mkdir -p "$plugins/Sources/dummy"
  cat > "$plugins/Package.swift" <<'SWIFT'
// swift-tools-version:6.0
import PackageDescription
let package = Package(
    name: "protoc-plugins",
    dependencies: [
        .package(url: "https://github.com/apple/swift-protobuf", exact: "1.39.0"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf", exact: "2.4.1"),
    ],
    targets: [.target(name: "dummy", dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")])]
)
SWIFT
  echo "public let unused = 0" > "$plugins/Sources/dummy/unused.swift"
  (cd "$plugins" && swift build -c release --product protoc-gen-swift && swift build -c release --product protoc-gen-grpc-swift-2)
fi
out=Sources/MegatronServer/GRPC/Generated
mkdir -p "$out"
protoc --proto_path=proto \
  --plugin=protoc-gen-swift="$plugins/.build/release/protoc-gen-swift" --swift_out="$out" --swift_opt=Visibility=Internal \
  --plugin=protoc-gen-grpc-swift="$plugins/.build/release/protoc-gen-grpc-swift-2" --grpc-swift_out="$out" \
  --grpc-swift_opt=Visibility=Internal,Client=false,Server=true \
  tei.proto
echo "generated: $(ls "$out")"
