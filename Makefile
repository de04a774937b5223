# Little Warehouse. `make demo` and `make test` are all a newcomer needs.
SHELL := /bin/bash
GO ?= go
BIN := bin
DEMO_STORE ?= ./data
DEMO_DAYS ?= 7
DEMO_EVENTS ?= 200000
STATICCHECK_VERSION ?= 2025.1.1

.PHONY: all build demo test test-short lint bench golden clean

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

# demo: a week of synthetic events with every nasty case, rolled up, summarized.
demo: build
	@to=$$(date -u -d yesterday +%F); from=$$(date -u -d "$(DEMO_DAYS) days ago" +%F); \
	echo "== generating $(DEMO_DAYS) days ($$from .. $$to) of ~$(DEMO_EVENTS) events/day into $(DEMO_STORE)"; \
	rm -rf $(DEMO_STORE) && \
	$(BIN)/eventgen --out $(DEMO_STORE) --from $$from --to $$to --events-per-day $(DEMO_EVENTS) --nasty && \
	echo "== rolling up $$from .. $$to" && \
	time $(BIN)/rollup --store $(DEMO_STORE) --from $$from --to $$to && \
	echo && echo "== the same run again: every day is up to date, nothing is rewritten" && \
	$(BIN)/rollup --store $(DEMO_STORE) --from $$from --to $$to --quiet | tail -n +3 && \
	echo && echo "== query it with DuckDB (duckdb CLI, or any DuckDB client):" && \
	echo "   $(BIN)/rollup ddl --dialect duckdb --store $(DEMO_STORE) > views.sql" && \
	echo "   duckdb -init views.sql -c \"SELECT dt, product, sum(events) AS events, sum(users) AS users FROM engagement_daily GROUP BY ALL ORDER BY ALL\""

test:
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...

test-short:
	$(GO) test -short ./...

lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

golden:
	$(GO) test ./internal/job -run TestGolden -update

bench:
	$(GO) run ./cmd/bench $(BENCH_ARGS)

clean:
	rm -rf $(BIN) dist
