#!/usr/bin/env bash
# check-docs.sh runs every local shell command in the ```sh blocks of
# README.md, docs/*.md and infra/README.md, as written, and fails on the
# first one that fails, naming its file and line. First it checks that the
# column lists of docs/tables.md name exactly the columns of every table
# (as rollup ddl --dialect athena prints them from rollups/).
#
# Commands that need AWS or the network are skipped, each with its reason
# printed (the skip rules are below, in skip_reason). The rest run in a
# temporary workspace:
#
#   bin/        a symlink to the repository's bin/, built first with
#               go build -o bin/ ./cmd/...
#   demo-data/  the demo store, built once by running `make demo` (from the
#               README) small: DEMO_EVENTS=2000 DEMO_DAYS=3
#   data/       a copy of demo-data/, the store the docs call ./data
#
# `make ...` and `go ...` commands run in the repository (they need its
# Makefile and sources, and write only bin/ there; make demo writes its
# store into the workspace through DEMO_STORE); every other command runs in
# the workspace, with bin/ on PATH. The commands of one file run in one
# shell, in order, so an export or a function defined earlier is seen later.
# A command that starts the collector (bin/collector without
# --firehose-stream) runs in the background on a free port (127.0.0.1:8080
# in the docs is rewritten to it), is waited for on /healthz (at most 15 s),
# and is stopped with SIGTERM once its file is done.
#
# Usage: scripts/check-docs.sh [file.md ...]   (default: all of the above)
# CHECK_DOCS_VERBOSE=1 prints every command's output as well.
# Exit status: 0 all ran, 1 a command failed, 2 the setup failed.
set -uo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo" || exit 2
if [ $# -gt 0 ]; then
	files=("$@")
else
	files=(README.md docs/*.md infra/README.md)
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/check-docs.XXXXXX")
trap 'rm -rf "$work"' EXIT

# skip_reason prints why cmd is not run here, or nothing if it is.
skip_reason() {
	local cmd=$1
	case "$cmd" in
	*"aws "*) echo "calls the AWS CLI" ;;
	*s3://*) echo "an S3 store (needs AWS)" ;;
	*--dispatch*) echo "dispatches days to AWS Lambda" ;;
	*--firehose-stream*) echo "sends to a real Firehose stream (needs AWS)" ;;
	*'$(out '*) echo "reads the stack's outputs with out(), which calls aws cloudformation" ;;
	*'${URL}'* | *'$URL'*) echo "calls the collector deployed on AWS" ;;
	"make test"*) echo "make test runs this script (it would recurse)" ;;
	"make demo"*) [ "$demo_done" = 1 ] && echo "already run, first, to build the demo store the other commands use" ;;
	"make bench"*) echo "the benchmark against DuckDB: minutes of both cores, run by hand" ;;
	"make lambda"*) echo "packages the Lambda zips for the AWS deploy that follows (cross-compiles two binaries for two architectures: minutes, not seconds)" ;;
	"go test "*) echo "a package test suite: make test runs it" ;;
	*"Power BI"*) echo "Power BI is a Windows application" ;;
	*)
		if [[ $cmd =~ curl ]] && ! [[ $cmd =~ curl[^|]*(127\.0\.0\.1|localhost) ]]; then
			echo "network: curl to a host other than this machine"
		elif [[ $cmd =~ (^|[\;\&\|][[:space:]]*)duckdb[[:space:]] ]] && ! command -v duckdb >/dev/null; then
			echo "the DuckDB CLI is not installed here (bin/lwsql covers the same queries)"
		fi
		;;
	esac
}

# extract prints, for each command in the ```sh blocks of file, a record
# "LINE<TAB>COMMAND" with the command's newlines as \x1f. A command is
# every line up to the one that ends it: not ending in a backslash and
# complete for bash -n (so a quoted string may span lines). Blank lines and
# comment lines between commands are not commands.
extract() {
	local file=$1 n=0 in=0 indent="" start=0 cmd="" line
	while IFS= read -r line || [ -n "$line" ]; do
		n=$((n + 1))
		if [ $in -eq 0 ]; then
			if [[ $line =~ ^([[:space:]]*)\`\`\`(sh|bash|shell)[[:space:]]*$ ]]; then
				in=1 indent=${BASH_REMATCH[1]} cmd=""
			fi
			continue
		fi
		line=${line#"$indent"}
		if [[ $line =~ ^[[:space:]]*\`\`\` ]]; then
			if [ -n "$cmd" ]; then
				echo "check-docs: $file:$start: unfinished command at the end of its block" >&2
				return 1
			fi
			in=0
			continue
		fi
		if [ -z "$cmd" ]; then
			[[ $line =~ ^[[:space:]]*(#|$) ]] && continue
			start=$n cmd=$line
		else
			cmd+=$'\n'$line
		fi
		[[ $line =~ \\$ ]] && continue
		bash -n -c "$cmd" 2>/dev/null || continue
		printf '%s\t%s\n' "$start" "${cmd//$'\n'/$'\x1f'}"
		cmd=""
	done <"$file"
}

free_port() {
	local p
	for p in $(seq 18080 18180); do
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

t0=$SECONDS
echo "check-docs: building bin/ (go build -o bin/ ./cmd/...)"
go build -o bin/ ./cmd/... || exit 2
ln -s "$repo/bin" "$work/bin"
ln -s "$repo/examples" "$work/examples"
# table_columns prints "table column" for every column (partition key
# included) of every curated table: from the Athena DDL, or from the
# "### `table`" sections of docs/tables.md.
table_columns() {
	if [ "$1" = ddl ]; then
		bin/rollup ddl --dialect athena --store s3://check-docs/w | awk '
			/^CREATE EXTERNAL TABLE/ { t = $(NF-1); sub(/^[^.]*\./, "", t); in_t = 1; next }
			in_t && /^  `/ { c = $1; gsub(/`/, "", c); print t, c; next }
			in_t && /^\)/ { in_t = 0; next }
			/^PARTITIONED BY/ { c = $3; gsub(/[`(]/, "", c); print t, c }'
	else
		awk '
			/^### `/ { t = $2; gsub(/`/, "", t); next }
			/^##? / || /^### [^`]/ { t = "" }
			t != "" && /^\| `[a-z_0-9]+` \|/ { c = $2; gsub(/`/, "", c); print t, c }' docs/tables.md
	fi | sort
}
if ! diff <(table_columns ddl) <(table_columns docs) >"$work/columns.diff"; then
	echo "check-docs: FAIL docs/tables.md: its column lists differ from the tables (< only in rollups/, > only in the doc):" >&2
	sed 's/^/    /' "$work/columns.diff" >&2
	exit 1
fi
echo "check-docs: docs/tables.md names every column of every table"

port=$(free_port) || {
	echo "check-docs: no free port in 18080..18180" >&2
	exit 2
}

# The demo store, once: make demo as the README has it, small.
export DEMO_STORE="$work/demo-data" DEMO_EVENTS=2000 DEMO_DAYS=3
demo_done=0

# run_file runs the commands of one file in one shell; it returns 1 on the
# first failure, after printing the file, line, command and its output.
run_file() {
	local file=$1 script="$work/run.sh" records
	records=$(extract "$file") || return 1
	{
		echo 'cd "$WORK"; export PATH="$WORK/bin:$PATH"; bg=()'
		echo 'stop_bg() { for p in "${bg[@]}"; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; bg=(); }'
		echo 'fail() { echo "check-docs: FAIL $1 (exit $2):" >&2; sed "s/^/    /" "$WORK/cmd.txt" >&2; echo "  its output (last 40 lines):" >&2; tail -n 40 "$WORK/out.log" | sed "s/^/    /" >&2; stop_bg; exit 1; }'
	} >"$script"
	local line cmd where reason first name
	local -A skipped=() # functions and variables defined by skipped commands
	while IFS=$'\t' read -r line cmd; do
		[ -n "$line" ] || continue
		cmd=${cmd//$'\x1f'/$'\n'}
		where="$file:$line"
		first=${cmd%%$'\n'*}
		reason=$(skip_reason "$cmd")
		if [ -z "$reason" ]; then
			for name in "${!skipped[@]}"; do
				if [[ $cmd =~ (^|[^A-Za-z0-9_])$name\( || $cmd =~ (^|[\;\&\|\(][[:space:]]*|\$\()$name[[:space:]] || $cmd =~ \$\{?$name([^A-Za-z0-9_]|$) ]]; then
					reason="uses $name, ${skipped[$name]}"
					break
				fi
			done
		fi
		if [ -n "$reason" ]; then
			if [[ $cmd =~ ^[[:space:]]*([A-Za-z_][A-Za-z0-9_]*)\(\) ]]; then
				skipped[${BASH_REMATCH[1]}]="a function defined by the skipped $where"
			elif [[ $cmd =~ ^[[:space:]]*(export[[:space:]]+)?([A-Za-z_][A-Za-z0-9_]*)= ]]; then
				skipped[${BASH_REMATCH[2]}]="a variable set by the skipped $where"
			fi
			printf 'echo %q\necho %q\n' "check-docs: skip $where: $first" "    because: $reason" >>"$script"
			continue
		fi
		cmd=${cmd//127.0.0.1:8080/127.0.0.1:$port}
		{
			printf 'cat >"$WORK/cmd.txt" <<'\''CHECKDOCS_EOF'\''\n%s\nCHECKDOCS_EOF\n' "$cmd"
			printf 'echo %q\n' "check-docs: run  $where: $first"
			if [[ $cmd =~ ^(make|go)[[:space:]] ]]; then
				# Repository commands run in the repository.
				printf '(cd "$REPO" && %s\n) >"$WORK/out.log" 2>&1 </dev/null || fail %q $?\n' "$cmd" "$where"
				if [[ $cmd =~ ^make[[:space:]]+demo ]]; then
					echo 'rm -rf "$WORK/data" && cp -a "$DEMO_STORE" "$WORK/data"'
				fi
			elif [[ $cmd =~ ^bin/collector[[:space:]] ]]; then
				# exec: the background job is the collector itself, so
				# stop_bg's SIGTERM reaches it.
				printf '(exec %s\n) >"$WORK/collector.log" 2>&1 </dev/null &\n' "$cmd"
				echo 'bg+=($!); up=0'
				echo 'for i in $(seq 150); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && { up=1; break; }; kill -0 "${bg[-1]}" 2>/dev/null || break; sleep 0.1; done'
				printf '[ $up = 1 ] || { cp "$WORK/collector.log" "$WORK/out.log"; fail %q "not serving"; }\n' "$where"
			else
				printf '{ %s\n} >"$WORK/out.log" 2>&1 </dev/null || fail %q $?\n' "$cmd" "$where"
			fi
		} >>"$script"
	done <<<"$records"
	echo 'stop_bg' >>"$script"
	if [ "${CHECK_DOCS_VERBOSE:-}" = 1 ]; then
		sed -i 's/|| fail \(.*\)$/|| fail \1; sed "s|^|    |" "$WORK\/out.log"/' "$script"
	fi
	WORK="$work" REPO="$repo" PORT="$port" bash "$script"
}

# The demo store must exist before any file's commands use it, whatever the
# order of files: build it first, from the README's make demo line.
if ! grep -q '^make demo' README.md; then
	echo "check-docs: README.md has no 'make demo' line to build the demo store with" >&2
	exit 2
fi
echo "check-docs: run  make demo (DEMO_STORE=$DEMO_STORE DEMO_EVENTS=$DEMO_EVENTS DEMO_DAYS=$DEMO_DAYS)"
if ! make --no-print-directory demo >"$work/demo.log" 2>&1 </dev/null; then
	echo "check-docs: FAIL README.md: make demo:" >&2
	tail -n 40 "$work/demo.log" | sed 's/^/    /' >&2
	exit 1
fi
cp -a "$DEMO_STORE" "$work/data"
demo_done=1

for f in "${files[@]}"; do
	[ -f "$f" ] || {
		echo "check-docs: no file $f" >&2
		exit 2
	}
	echo "check-docs: == $f"
	run_file "$f" || exit 1
done
echo "check-docs: ok: every local command in ${files[*]} ran ($((SECONDS - t0)) s)"
