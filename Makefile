# storeagent: build, test, bench, lint, cross.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

GO          ?= go
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -s -w -X main.version=$(VERSION)
OUT         ?= build
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
CMDS        := storeagent storectl cdpsim
# Static binaries for the device fleet: GOOS/GOARCH[/GOARM].
CROSS       := linux/amd64 linux/arm64 linux/arm/7 windows/amd64

.PHONY: all build test test-short bench lint cross run clean

all: lint test build

## build: the commands for this machine, into $(OUT)/
build:
	@mkdir -p $(OUT)
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(OUT)/ $(addprefix ./cmd/,$(CMDS))

## run: the agent on its embedded default config (offline, no broker)
run:
	$(GO) run ./cmd/storeagent

## test: every test, with the race detector, against real parts
## (mosquitto and socat are needed; .ci/run installs them)
test:
	$(GO) test -race -count=1 -timeout 20m ./...

## bench: the benchmarks, ending with one `figure` line per tracked number
bench:
	{ \
	  $(GO) test -run '^$$' -bench 'BenchmarkOutboxAppend|BenchmarkOutboxDiskBytes' -benchtime 2s ./store/ ; \
	  $(GO) test -run '^$$' -bench 'BenchmarkOutboxBacklogHeap' -benchtime 1x -timeout 30m ./store/ ; \
	  $(GO) test -run '^$$' -bench 'BenchmarkIdentify1M' -benchtime 1x -timeout 30m ./agent/ ; \
	  $(GO) test -run '^$$' -bench 'BenchmarkScanToAnswer' -benchtime 2000x ./devices/scanner/ ; \
	  $(GO) test -run '^$$' -bench 'BenchmarkIdentifyAPI' ./devices/localapi/ ; \
	  $(GO) test -run '^$$' -bench 'BenchmarkDrain|BenchmarkSnapshot1M' -benchtime 1x -timeout 30m ./sync/cdp/ ; \
	} 2>&1 | $(GO) run ./cmd/benchfig

## lint: gofmt, go vet, staticcheck (installed through the Go toolchain)
lint:
	@unformatted="$$(gofmt -l $$(git ls-files '*.go'))"; \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) install $(STATICCHECK)
	"$$($(GO) env GOPATH)/bin/staticcheck" ./...

## cross: static CGO_ENABLED=0 binaries for the fleet, into $(OUT)/<os>-<arch>/
cross:
	@for t in $(CROSS); do \
	  os=$${t%%/*}; rest=$${t#*/}; arch=$${rest%%/*}; arm=""; \
	  [ "$$arch" = arm ] && arm=$${rest#*/}; \
	  dir=$(OUT)/$$os-$$arch$${arm:+v$$arm}; mkdir -p $$dir; \
	  echo "building $$dir"; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch GOARM=$$arm \
	    $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $$dir/ $(addprefix ./cmd/,$(CMDS)); \
	done
	@ls -l $(OUT)/*/

clean:
	rm -rf $(OUT)
