# Portcullis. `make run` serves the quickstart demo on loopback; `make test`
# installs what the tests need (Debian packages, Go modules) and runs them all,
# root-only ones included when run as root.

GO        ?= go
BIN       := bin/portcullis
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/portcullis-lb/portcullis/internal/buildinfo.Version=$(VERSION)
CONFIG    ?= configs/quickstart.yaml
# Debian packages the test suite uses: iproute2/ethtool for the namespace lab,
# clang/llvm/libbpf-dev so the bpf2go staleness test can rebuild the objects,
# ngtcp2-client (gtlsclient) as an independent HTTP/3 client, etcd-server
# for the etcd discovery tests, chromium for the dashboard's browser test.
TEST_DEBS := iproute2 ethtool clang llvm libbpf-dev curl ngtcp2-client etcd-server chromium nftables ruby python3 bird2
STATICCHECK_VERSION := v0.8.2
H2SPEC := github.com/summerwind/h2spec/cmd/h2spec@v2.2.1+incompatible

export PATH := $(PATH):/usr/local/go/bin:$(HOME)/go/bin

.PHONY: all build run test test-deps generate lint bench deb clean

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/portcullis

run: build
	./$(BIN) run --config $(CONFIG)

# Installs only what is missing, so a second run does no network I/O.
test-deps:
	@missing=""; for p in $(TEST_DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" -ne 0 ]; then echo "missing Debian packages:$$missing (install them as root; root-only tests will skip)"; \
	  else echo "installing:$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; fi; \
	fi
	@# bird2's package starts a system-wide bird; the BGP tests run their own
	@# router in a namespace and want no other speaker on the machine.
	@if [ "$$(id -u)" -eq 0 ] && command -v systemctl >/dev/null 2>&1; then systemctl disable --now bird >/dev/null 2>&1 || true; fi
	$(GO) mod download
	@command -v h2spec >/dev/null 2>&1 || [ -x "$$($(GO) env GOPATH)/bin/h2spec" ] || $(GO) install $(H2SPEC)

# -p 1: one test binary at a time. The namespace, cluster and browser tests
# time real failovers on 2 cores; running them beside each other turns
# scheduling delays into false failures, and the whole suite still takes
# only a few minutes.
test: test-deps
	$(GO) vet ./...
	$(GO) test -count=1 -p 1 -timeout 10m ./...

generate:
	$(GO) generate ./bpf/ ./internal/config/

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

# Every Go benchmark of l4, l7 and config, then bench/run-all.sh: the
# figures of docs/benchmarks.md (XDP, Maglev, L7 against HAProxy/nginx,
# failover against keepalived) in one summary table, under 15 minutes; parts
# whose prerequisites (root, haproxy, keepalived, wrk, h2load) are missing skip.
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./l4/... ./l7/... ./internal/config/...
	GO='$(GO)' bash bench/run-all.sh

LAB := bin/portcullis-lab
.PHONY: lab lab-failover lab-down lab-tool
# The ha-pair HA topology in network namespaces on this machine (root;
# docs/lab.md): up, crash the VIP owner and watch the client, tear down.
lab-tool:
	$(GO) build -trimpath -o $(LAB) ./cmd/portcullis-lab
lab: build lab-tool
	./$(LAB) up -bin $(BIN)
lab-failover: lab-tool
	./$(LAB) failover
lab-down: lab-tool
	./$(LAB) down

# dist/portcullis_<version>_<arch>.deb (packaging/, docs/operations.md).
deb:
	GO='$(GO)' VERSION='$(VERSION)' packaging/build-deb.sh dist

clean:
	rm -rf bin dist
