# The repository's everyday commands; each is a script under scripts/ that
# runs as well without make. `make` alone lists them.
.DEFAULT_GOAL := help
SHELL := /bin/bash

.PHONY: help serve check fmt test gen check-gen bench conformance tools

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

serve: ## run the server on the memory store with examples/policies.yaml
	./scripts/serve.sh

check: ## the quick check: format, vet, staticcheck, unit tests without services (seconds)
	./scripts/check.sh

fmt: tools ## gofmt and goimports every hand-written Go file
	git ls-files '*.go' | grep -v '/gen/' | xargs .tools/bin/goimports -local github.com/throttlekit/throttlekit-go -w

test: ## every test, as CI runs it (installs services and Docker; ~25 min cold, ~13 warm)
	./scripts/test.sh

gen: tools ## regenerate the Go and Python stubs and the Lua copies
	PATH="$(CURDIR)/.tools/bin:$$PATH" buf generate
	python3 scripts/gen-lua.py
	./scripts/gen-python.sh

check-gen: tools ## fail if generated code differs from proto/ and lua/
	./scripts/check-gen.sh

bench: ## the comparisons of BENCHMARKS.md (starts its own Redis)
	go -C bench run .

conformance: ## the conformance suite against real server processes and stores
	./scripts/install-services.sh
	go -C server build -o "$(CURDIR)/.tools/bin/throttlekit-server" ./cmd/throttlekit-server
	go -C server build -tags throttlekit_testclock -o "$(CURDIR)/.tools/bin/throttlekit-server-testclock" ./cmd/throttlekit-server
	THROTTLEKIT_SERVER_BIN="$(CURDIR)/.tools/bin/throttlekit-server" \
	THROTTLEKIT_SERVER_TESTCLOCK_BIN="$(CURDIR)/.tools/bin/throttlekit-server-testclock" \
	go -C conformance test -count=1 ./...

tools:
	./scripts/install-tools.sh
