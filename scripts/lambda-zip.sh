#!/usr/bin/env bash
# Builds the Lambda deployment packages, each holding one executable
# `bootstrap` for the provided.al2023 runtime, for arm64 and amd64
# (ARCHES="arm64" to build one):
#   dist/rollup-lambda-<arch>.zip     the rollup function: every stage of the nightly state machine (cmd/rollup-lambda)
#   dist/collector-lambda-<arch>.zip  the collector behind a function URL (cmd/collector-lambda)
# Needs only Go: the zip is written by scripts/lambdazip (archive/zip), not
# by a zip command.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
ARCHES=${ARCHES:-arm64 amd64}
FUNCTIONS=${FUNCTIONS:-rollup-lambda collector-lambda}
mkdir -p dist
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for fn in $FUNCTIONS; do
	for arch in $ARCHES; do
		mkdir -p "$tmp/$fn/$arch"
		GOOS=linux GOARCH="$arch" CGO_ENABLED=0 "$GO" build -tags lambda.norpc -trimpath -ldflags='-s -w' \
			-o "$tmp/$fn/$arch/bootstrap" "./cmd/$fn"
		"$GO" run ./scripts/lambdazip -o "dist/$fn-$arch.zip" "$tmp/$fn/$arch/bootstrap"
	done
done
