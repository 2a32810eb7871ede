# The usual targets. Only Go is needed; `make` is a convenience over the
# go commands written in README.md.
GO ?= go
BIN := bin/pathupdate

.PHONY: build test test-short race lint fuzz fuzz-targets demo sandbox worker cluster clean check

build:
	$(GO) build -o $(BIN) ./cmd/pathupdate

test:
	$(GO) test ./...

# The quick loop: -short skips the end-to-end tests (processes of the built
# binary) and the tests that start a 3-node cluster.
test-short:
	$(GO) test -short ./...

race:
	$(GO) test -race -count=1 ./...

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$unformatted" ]; then echo "gofmt: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

# Runs every fuzz target for FUZZTIME (the seed corpora also run in `make test`).
# The targets come from the code (`go test -list`), so a new one cannot be
# left out; `make fuzz-targets` prints them as "package target" lines.
FUZZTIME ?= 30s
fuzz:
	@set -e; targets=$$($(MAKE) -s fuzz-targets); test -n "$$targets"; \
	echo "$$targets" | while read -r pkg target; do \
		echo "== $$target ($$pkg)"; \
		$(GO) test -run='^$$' -fuzz="^$$target\$$" -fuzztime=$(FUZZTIME) "$$pkg" </dev/null; \
	done

fuzz-targets:
	@$(GO) test -list '^Fuzz' ./... | awk '/^Fuzz/ { t[n++] = $$1 } /^ok / { for (i = 0; i < n; i++) print $$2, t[i]; n = 0 }'

demo:
	$(GO) run ./cmd/pathupdate demo

sandbox:
	$(GO) run ./cmd/pathupdate sandbox

worker:
	$(GO) run ./cmd/pathupdate worker --sandbox

# docker-compose.yml's topology without Docker: 3 NATS nodes, sandbox, 2 workers.
cluster:
	bash deploy/cluster.sh

# Benchmarks (docs/benchmarks.md): every scenario next to its reference,
# about 13–20 minutes on 2 cores; bench-quick runs them all with small sizes
# in about a minute (a smoke run: rough ratios). The table is printed and
# the JSON written to bench/results/. BENCHFLAGS adds flags, e.g.
# BENCHFLAGS='-scenarios 1,2 -cpuprofile-dir bench/results/profiles'.
.PHONY: bench bench-quick bench-console
bench: build
	cd bench/peer && $(GO) build -o ../../bin/pathupdate-peer-bench .
	$(GO) run ./bench/cmd/pathupdate-bench -worker-bin $(BIN) -peer-bin bin/pathupdate-peer-bench $(BENCHFLAGS)

# The console's pages with 100,000 dead letters and 8 partitions (target:
# each under 300 ms; docs/console.md).
bench-console:
	$(GO) test ./internal/console -run '^$$' -bench Pages -benchtime 20x

bench-quick: build
	cd bench/peer && $(GO) build -o ../../bin/pathupdate-peer-bench .
	$(GO) run ./bench/cmd/pathupdate-bench -quick -worker-bin $(BIN) -peer-bin bin/pathupdate-peer-bench $(BENCHFLAGS)

# Reliability suite (docs/reliability.md) in its long mode: bigger runs, a
# 60-second API outage, more kills, restarts and node losses. CI runs the
# same scenarios small (go test ./e2e/). Each scenario's figures are
# appended to bin/chaos-report.jsonl. CHAOSFLAGS adds flags, e.g.
# CHAOSFLAGS='-run TestChaosKill9'; PATHUPDATE_CHAOS_SEED=N repeats a run.
.PHONY: chaos
chaos:
	mkdir -p bin && PATHUPDATE_CHAOS=long PATHUPDATE_CHAOS_REPORT=$(CURDIR)/bin/chaos-report.jsonl $(GO) test -race -count=1 -timeout 90m -v -run 'TestChaos' $(CHAOSFLAGS) ./e2e/

# What CI runs.
check:
	bash .ci/run

clean:
	rm -rf bin data
