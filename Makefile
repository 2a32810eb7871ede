# The usual targets. Only Go is needed; `make` is a convenience over the
# go commands written in README.md.
GO ?= go
BIN := bin/pathupdate

.PHONY: build test race lint fuzz demo sandbox worker cluster clean check

build:
	$(GO) build -o $(BIN) ./cmd/pathupdate

test:
	$(GO) test ./...

race:
	$(GO) test -race -count=1 ./...

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$unformatted" ]; then echo "gofmt: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

# Runs each fuzz target for FUZZTIME (the seed corpora also run in `make test`).
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzDecodeEvent -fuzztime=$(FUZZTIME) ./pathupdate/
	$(GO) test -run='^$$' -fuzz=FuzzFromHeaders -fuzztime=$(FUZZTIME) ./deadletter/

demo:
	$(GO) run ./cmd/pathupdate demo

sandbox:
	$(GO) run ./cmd/pathupdate sandbox

worker:
	$(GO) run ./cmd/pathupdate worker --sandbox

# docker-compose.yml's topology without Docker: 3 NATS nodes, sandbox, 2 workers.
cluster:
	bash deploy/cluster.sh

# What CI runs.
check:
	bash .ci/run

clean:
	rm -rf bin data
