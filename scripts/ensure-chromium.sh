#!/usr/bin/env bash
# Makes sure a headless-capable Chromium is on PATH, for the report's browser
# test (internal/report: TestReportInChromium). Installs Debian's chromium
# package when it is missing; needs root (CI runs as root) and a reachable
# Debian package mirror. Prints the browser's path and version.
set -euo pipefail
if ! command -v chromium >/dev/null 2>&1; then
	if [ "$(id -u)" != 0 ] && [ "${CI:-}" != true ]; then
		echo "chromium not found and not root: the report's browser test will be skipped (apt-get install chromium to run it)" >&2
		exit 0
	fi
	echo "chromium not found: installing Debian's chromium package" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
command -v chromium
chromium --version 2>/dev/null || true
