#!/usr/bin/env bash
# Makes sure node and npm are on PATH, for the tests that run the nightly
# state machine with the States Language tools from npm (internal/sfntest:
# asl-validator, aws-local-stepfunctions; the tests install those
# themselves with npm ci). Installs Debian's nodejs and npm packages when
# they are missing; needs root (CI runs as root).
set -euo pipefail
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	if [ "$(id -u)" != 0 ] && [ "${CI:-}" != true ]; then
		echo "node or npm not found and not root: the state machine tests will be skipped (apt-get install nodejs npm to run them)" >&2
		exit 0
	fi
	echo "node or npm not found: installing Debian's nodejs and npm packages" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
echo "node $(node --version), npm $(npm --version)"
