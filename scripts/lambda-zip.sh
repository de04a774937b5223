#!/usr/bin/env bash
# Builds the Lambda deployment packages: dist/rollup-lambda-<arch>.zip, each
# holding one executable `bootstrap` for the provided.al2023 runtime, for
# arm64 and amd64 (ARCHES="arm64" to build one). Needs only Go: the zip is
# written by scripts/lambdazip (archive/zip), not by a zip command.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
ARCHES=${ARCHES:-arm64 amd64}
mkdir -p dist
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for arch in $ARCHES; do
	mkdir -p "$tmp/$arch"
	GOOS=linux GOARCH="$arch" CGO_ENABLED=0 "$GO" build -tags lambda.norpc -trimpath -ldflags='-s -w' \
		-o "$tmp/$arch/bootstrap" ./cmd/rollup-lambda
	"$GO" run ./scripts/lambdazip -o "dist/rollup-lambda-$arch.zip" "$tmp/$arch/bootstrap"
done
