# Little Warehouse. `make demo` and `make test` are all a newcomer needs.
SHELL := /bin/bash
GO ?= go
BIN := bin
# The demo's own store, deleted and rebuilt by every make demo: never ./data,
# which docs/collector.md tells people to use for the collector.
DEMO_STORE ?= ./demo-data
DEMO_DAYS ?= 7
DEMO_EVENTS ?= 200000
STATICCHECK_VERSION ?= v0.8.2

.PHONY: all build demo test test-short lint bench golden infra lambda clean

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

# demo: a week of synthetic events with every nasty case, rolled up, summarized,
# in $(DEMO_STORE) (deleted first; DEMO_STORE, DEMO_DAYS and DEMO_EVENTS can be
# set in the environment or on the command line).
demo: build
	@to=$$(date -u -d yesterday +%F); from=$$(date -u -d "$(DEMO_DAYS) days ago" +%F); \
	echo "== generating $(DEMO_DAYS) days ($$from .. $$to) of ~$(DEMO_EVENTS) events/day into $(DEMO_STORE)"; \
	case "$$(realpath -m $(DEMO_STORE))" in "$$(realpath -m ./data)"|"$$(realpath -m .)"|/) echo "make demo: DEMO_STORE=$(DEMO_STORE) would delete your data; pick another folder" >&2; exit 2;; esac; \
	rm -rf $(DEMO_STORE) && \
	$(BIN)/eventgen --out $(DEMO_STORE) --from $$from --to $$to --events-per-day $(DEMO_EVENTS) --nasty --start-on-from && \
	echo "== rolling up $$from .. $$to" && \
	time $(BIN)/rollup --store $(DEMO_STORE) --from $$from --to $$to --log text --funnels examples/funnels.json && \
	echo && echo "== the same run again: every day is up to date, nothing is rewritten" && \
	$(BIN)/rollup --store $(DEMO_STORE) --from $$from --to $$to --log text --quiet | tail -n +3 && \
	echo && echo "== what came in, per day (data_quality_daily)" && \
	$(BIN)/lwsql --store $(DEMO_STORE) "SELECT dt, raw_rows, kept_rows, duplicates_dropped, invalid_rows, missing_event_time_rows, clock_skewed_rows, bad_files FROM data_quality_daily ORDER BY dt" && \
	echo && echo "== events and people per product and day (engagement_daily, user_daily)" && \
	$(BIN)/lwsql --store $(DEMO_STORE) "SELECT e.dt, e.product, sum(e.events) AS events, any_value(u.people) AS people FROM engagement_daily e JOIN (SELECT dt, product, count(*) AS people FROM user_daily GROUP BY ALL) u USING (dt, product) GROUP BY ALL ORDER BY ALL" && \
	echo && echo "== the funnels of examples/funnels.json, over the week (funnel_daily)" && \
	$(BIN)/lwsql --store $(DEMO_STORE) "SELECT product, funnel, step, step_name, sum(people) AS people, CAST(median(median_seconds) AS BIGINT) AS typical_seconds FROM funnel_daily GROUP BY product, funnel, step, step_name ORDER BY ALL" && \
	echo && echo "== try your own (any DuckDB SQL; tables: events, engagement_daily, user_daily, users, sessions_daily, paths_daily, active_users_daily, retention_daily, lifecycle_daily, stickiness_daily, funnel_daily, data_quality_daily, quarantine):" && \
	echo "   $(BIN)/lwsql --store $(DEMO_STORE) \"SELECT reason, count(*) FROM quarantine GROUP BY reason\"" && \
	echo "   or with the duckdb CLI: $(BIN)/rollup ddl --dialect duckdb --store $(DEMO_STORE) > views.sql; duckdb -init views.sql" && \
	$(BIN)/rollup report --store $(DEMO_STORE) --out $(DEMO_STORE)/report.html && \
	echo && echo "== the report: open $(DEMO_STORE)/report.html in a browser (one file, no network needed)"

test:
	./scripts/ensure-chromium.sh
	./scripts/ensure-node.sh
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...

test-short:
	$(GO) test -short ./...

lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

# lambda: dist/rollup-lambda-{arm64,amd64}.zip and dist/collector-lambda-{arm64,amd64}.zip, each holding bootstrap (provided.al2023)
lambda:
	GO=$(GO) ./scripts/lambda-zip.sh

# infra: regenerate the CloudFormation template from the Go schemas; commit the result.
infra:
	$(GO) run ./cmd/infragen -o infra/template.json

golden:
	$(GO) test ./internal/job -run TestGolden -update

bench:
	$(GO) run ./cmd/bench $(BENCH_ARGS)

clean:
	rm -rf $(BIN) dist
