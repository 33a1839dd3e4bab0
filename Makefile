# consentgate — the two commands a newcomer needs are `make run` and `make test`.
GO       ?= go
BIN      := bin/consentgate
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
CONFIG   ?=
FUZZTIME ?= 20s
SOAKFLAGS ?= -duration 10m

.PHONY: build run demo test test-browser vet k8s-tools bench bench-go bench-load bench-load-redis bench-compare bench-scale profile soak fuzz clean

build:
	$(GO) build -trimpath -tags grpcnotrace -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/consentgate

## run: start the proxy on embedded defaults (or CONFIG=file.yaml)
run: build
	./$(BIN) serve $(if $(CONFIG),--config $(CONFIG))

## demo: the proxy with a demo config, a sink standing in for every vendor and a demo
## shop on 127.0.0.1:8000 whose tags go through the proxy; no network; Ctrl-C stops it
demo: build
	$(GO) build -o bin/consentgate-demo ./cmd/demo
	./bin/consentgate-demo -binary $(BIN) $(DEMOFLAGS)

## test: the allocation budgets, which need a build without the race detector (it makes
## sync.Pool drop items on purpose), and the generative leak test (100k+ hits, ten times
## slower under it), then every test with it, then the browser tests when Chromium is
## installed. deploy/'s tests need the tools k8s-tools builds first.
test: vet k8s-tools
	$(GO) test -count=1 -run 'Alloc|LeakGenerative' ./...
	$(GO) test -race -count=1 ./...
	@if command -v chromium >/dev/null 2>&1; then \
	  $(MAKE) test-browser; \
	else \
	  echo "test-browser: skipped, chromium is not installed (apt-get install chromium)"; \
	fi

## test-browser: the tests that drive a headless Chromium (build tag browser, names
## TestBrowser*); screenshots go to $ARTIFACTS_DIR or each package's testdata/artifacts/
test-browser:
	$(GO) test -tags browser -count=1 -run Browser ./...

## k8s-tools: Helm, kustomize and the manifest checkers deploy/'s tests run (k8scheck:
## strict decoding against the Kubernetes API types; composecheck: Docker Compose's own
## loader), built into bin/ from the Go module proxy in their own module, tools/k8s, so
## Kubernetes' dependencies never reach the product's go.mod. The first build takes
## minutes; later ones are no-ops. It is the same build the tests do (TestK8sTools).
k8s-tools:
	$(GO) test -count=1 -timeout 60m -run '^TestK8sTools$$' ./deploy/

vet:
	@unformatted="$$(gofmt -l .)"; if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	cd tools/k8s && $(GO) vet ./...

## bench: in-process benchmarks, then whole-process load through bench/ with the memory
## store and with a throwaway Redis (cache hit ratio and Redis calls are printed)
bench: bench-go bench-load bench-load-redis

bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./rules/ ./geo/ ./consent/ ./proxy/ ./telemetry/

bench-load: build
	$(GO) run ./bench/cmd/loadgen -binary $(BIN) -store memory $(BENCHFLAGS)

bench-load-redis: build
	$(GO) run ./bench/cmd/loadgen -binary $(BIN) -store redis $(BENCHFLAGS)

## bench-compare: consentgate beside nginx and HAProxy (installed with apt-get if missing, as
## root), each pinned to its own core with the generator on the other, interleaved rounds,
## medians; JSON and an SVG chart in bench/results/. Not part of `make bench`: it takes
## 2 mixes × 3 proxies × 5 rounds × 12 s ≈ 6 min by default (COMPAREFLAGS='-rounds 2 -duration 5s')
bench-compare: build
	$(GO) run ./bench/cmd/loadgen compare $(COMPAREFLAGS)

## profile: CPU and allocation profiles of consentgate under the realistic mix, from a build
## with -tags profile (signals start and stop them around the measured window); the files and
## their top entries go to bench/out/profile-<time>/ (PROFILEFLAGS='-duration 30s')
profile:
	$(GO) build -tags profile,grpcnotrace -ldflags '-X main.version=$(VERSION)-profile' -o bin/consentgate-profile ./cmd/consentgate
	$(GO) run ./bench/cmd/loadgen profile $(PROFILEFLAGS)

## bench-scale: hits/s per core at saturation, CPU per hit at 1 and 2 cores, memory with
## 1k/100k/1M cached visitors, Redis calls per hit with a cold and a warm cache
bench-scale: build
	$(GO) run ./bench/cmd/loadgen scale $(SCALEFLAGS)

## soak: two instances on one Redis for 10 minutes under a fixed mixed load (3000 hits/s) and
## a consent-write stream, with a config reload every 10 s (POST /admin/reload and SIGHUP in
## turn), a GeoIP database swap every minute and one Redis restart that loses every record;
## fails on a 5xx, a failed reload, a lost consent write, a decision against the visitor's
## choice or goroutines/RSS past their bound. Not part of `make test` (SOAKFLAGS='-duration 3m')
soak: build
	$(GO) run ./bench/cmd/loadgen soak -binary $(BIN) $(SOAKFLAGS)

## fuzz: run every native fuzz target for FUZZTIME each (never part of `make test`)
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

clean:
	rm -rf bin
