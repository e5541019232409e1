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

.PHONY: all build test test-short bench lint cross run demo clean install

all: lint test build

## build: the commands for this machine, into $(OUT)/
build:
	@mkdir -p $(OUT)
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(OUT)/ $(addprefix ./cmd/,$(CMDS))

## run: the agent on its embedded default config (offline, no broker)
run:
	$(GO) run ./cmd/storeagent

## demo: one store day, narrated: embedded broker, cdpsim, the agent, a
## simulated scanner (pty) and POS; needs only Go (Linux, for the pty)
demo:
	$(GO) run ./cmd/storedemo

## test: every test, with the race detector, against real parts
## (mosquitto and socat are needed; .ci/run installs them)
test:
	$(GO) test -race -count=1 -timeout 20m ./...

## bench: the benchmarks, ending with one `figure` line per tracked number
bench:
	{ \
	  $(GO) test -run '^$$' -bench 'BenchmarkOutboxAppend|BenchmarkOutboxDiskBytes' -benchtime 2s ./store/ ; \
	  $(GO) test -run '^$$' -bench 'BenchmarkOutboxBacklogHeap' -benchtime 1x -timeout 30m ./store/ ; \
	  $(GO) test -run '^$$' -bench 'BenchmarkIdentify1M|BenchmarkIdleHeap1M' -benchtime 1x -timeout 30m ./agent/ ; \
	  $(GO) test -run '^$$' -bench 'BenchmarkScanToAnswer' -benchtime 2000x ./devices/scanner/ ; \
	  $(GO) test -run '^$$' -bench 'BenchmarkIdentifyAPI' ./devices/localapi/ ; \
	  $(GO) test -run '^$$' -bench 'BenchmarkDrain|BenchmarkCatchUp|BenchmarkSnapshot1M' -benchtime 1x -timeout 30m ./sync/cdp/ ; \
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
	@# The fleet's target: the agent binary under 20 MB on every platform.
	@for f in $(OUT)/*/storeagent $(OUT)/*/storeagent.exe; do \
	  size=$$(stat -c %s $$f); \
	  if [ $$size -ge 20000000 ]; then echo "$$f is $$size bytes: over the 20 MB target"; exit 1; fi; \
	done; echo "every storeagent binary is under 20 MB"

## install: the binaries, the systemd unit and a config (KIND=pos|kiosk|speaker|gateway,
## default: the embedded offline default) under $(DESTDIR); never overwrites a config
PREFIX  ?= /usr/local
DESTDIR ?=
KIND    ?= default
install: build
	install -D -m 0755 $(OUT)/storeagent $(DESTDIR)$(PREFIX)/bin/storeagent
	install -D -m 0755 $(OUT)/storectl $(DESTDIR)$(PREFIX)/bin/storectl
	@mkdir -p $(DESTDIR)/etc/systemd/system
	sed 's|@BINDIR@|$(PREFIX)/bin|g' cmd/storeagent/systemd/storeagent.service > $(DESTDIR)/etc/systemd/system/storeagent.service
	@if [ -e $(DESTDIR)/etc/storeagent/agent.toml ]; then \
	  echo "kept $(DESTDIR)/etc/storeagent/agent.toml"; \
	else \
	  install -D -m 0640 firmware-config/$(KIND).toml $(DESTDIR)/etc/storeagent/agent.toml; \
	fi
	@echo "next: storectl config check /etc/storeagent/agent.toml && systemctl daemon-reload && systemctl enable --now storeagent"

clean:
	rm -rf $(OUT)
