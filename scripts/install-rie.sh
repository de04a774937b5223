#!/usr/bin/env bash
# Installs the AWS Lambda Runtime Interface Emulator (aws-lambda-rie), at the
# version the integration test pins, into GOBIN (default: $(go env GOPATH)/bin).
# The test (cmd/rollup-lambda) installs it by itself when it is missing; this
# is for running the emulator by hand:
#   LW_STORE=./data aws-lambda-rie --runtime-interface-emulator-address 127.0.0.1:8080 ./bootstrap
#   curl -d '{"stage":"build","day":"2026-11-20"}' http://127.0.0.1:8080/2015-03-31/functions/function/invocations
set -euo pipefail
GO=${GO:-go}
RIE_VERSION=${RIE_VERSION:-v0.0.0-20261030222936-bef5c4ba774d}
"$GO" install "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@$RIE_VERSION"
echo "installed aws-lambda-rie $RIE_VERSION in ${GOBIN:-$("$GO" env GOPATH)/bin}"
