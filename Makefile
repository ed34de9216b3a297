# Strata's everyday commands. Each is one short line; README.md explains them.
GOLANGCI_LINT_VERSION := v2.15.0
BASELINE ?= ../shared/tools/pg-baseline.sh

.PHONY: run test fuzz generate lint bench build playground explorer assets-check node-client sse-client

run: ## run the server; without DATABASE_URL it starts a private PostgreSQL under .strata/
	go run ./cmd/strata serve

test: node-client sse-client ## the whole test suite, against real PostgreSQL, then make fuzz
	go test -race -count=1 -timeout 30m ./...
	$(MAKE) fuzz

# go test -fuzz takes one target per run. Budgets are counts of executions, not durations: with a
# duration, Go 1.26's fuzz coordinator can report "context deadline exceeded" as a failure when
# its deadline passes mid-run on a busy machine (go.dev/issue/75804, fixed in Go 1.27). 50,000
# runs take a few seconds here; minimizing a new input is capped at 200 runs, as a few large ones
# would otherwise take the whole budget.
FUZZ = go test -run='^$$' -fuzztime=50000x -fuzzminimizetime=200x

fuzz: ## each fuzz target for 50,000 runs, starting from its seed corpus in testdata/fuzz
	$(FUZZ) -fuzz='^FuzzParsePosition$$' ./internal/store/eventstore
	$(FUZZ) -fuzz='^FuzzPositionOrder$$' ./internal/store/eventstore
	$(FUZZ) -fuzz='^FuzzValidateObject$$' ./internal/store/eventstore
	$(FUZZ) -fuzz='^FuzzPrepare$$' ./internal/store/eventstore
	$(FUZZ) -fuzz='^FuzzParseID$$' ./internal/runtime/command
	$(FUZZ) -fuzz='^FuzzHistoryPage$$' ./graph
	$(FUZZ) -fuzz='^FuzzUnmarshalJSON$$' ./graph/scalar
	$(FUZZ) -fuzz='^FuzzUnmarshalJSONLiteral$$' ./graph/scalar
	$(FUZZ) -fuzz='^FuzzUnmarshalMoney$$' ./graph/scalar

generate: ## regenerate generated code (CI fails if this changes anything)
	go generate ./...

lint: ## gofmt, go vet and golangci-lint (pinned)
	test -z "$$(gofmt -l .)" || { gofmt -l .; exit 1; }
	go vet ./...
	go run github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION) run ./...

# The Playground's and the Explorer's built assets are committed in their dist folders, so
# building and running Strata need no Node.js, and testing it needs Node.js only for the Node test
# client (node-client below). Whoever changes web/playground, web/explorer or examples.graphql
# runs `make playground explorer` and commits the result. These targets always rebuild: they
# depend on no file times, which a fresh clone sets to the checkout's. npm ci installs exactly
# what package-lock.json pins; the build script bundles with esbuild.
playground: ## rebuild the Playground's committed assets (npm) into internal/transport/playground/dist
	cd web/playground && npm ci --no-audit --no-fund && npm run build

explorer: ## rebuild the Explorer's committed assets (npm) into internal/transport/explorer/dist
	cd web/explorer && npm ci --no-audit --no-fund && npm run build

ASSETS := internal/transport/playground/dist internal/transport/explorer/dist

# git status, not git diff alone: it also sees a file the build added or removed, and changes
# that are staged but not committed.
assets-check: playground explorer ## rebuild the assets and fail when they differ from the committed ones
	@changed=$$(git status --porcelain --untracked-files=all -- $(ASSETS)) || exit 1; \
	if [ -n "$$changed" ]; then \
		echo "$$changed"; git --no-pager diff --stat HEAD -- $(ASSETS); \
		echo "assets-check: the committed assets are not what web/ builds; run make playground explorer and commit the result"; \
		exit 1; \
	fi; \
	echo "assets-check: the committed assets are what web/ builds"

# The Node.js client TestNodeGraphQLWSClientReceivesEvents runs: graphql-ws, graphql and ws as
# web/node-client/package-lock.json pins them. npm writes node_modules/.package-lock.json last,
# so it is there and newer than the lock file once an install has finished.
NODE_CLIENT := web/node-client/node_modules/.package-lock.json

node-client: $(NODE_CLIENT) ## install the Node test client's pinned npm packages (make test does)

$(NODE_CLIENT): web/node-client/package-lock.json web/node-client/package.json
	cd web/node-client && npm ci --no-audit --no-fund

# The Node.js client TestSSEClientCatchesUpGoesLiveAndResumes runs: graphql-sse and graphql as
# web/sse-client/package-lock.json pins them, installed as node-client's are.
SSE_CLIENT := web/sse-client/node_modules/.package-lock.json

sse-client: $(SSE_CLIENT) ## install the SSE test client's pinned npm packages (make test does)

$(SSE_CLIENT): web/sse-client/package-lock.json web/sse-client/package.json
	cd web/sse-client && npm ci --no-audit --no-fund

build: ## build bin/strata
	go build -o bin/strata ./cmd/strata

bench: build ## append benchmark next to the raw PostgreSQL baseline, then subscriptions (needs DATABASE_URL)
	$(BASELINE) "$$DATABASE_URL"
	./bin/strata bench append --writers 8 --batch 1 --duration 10s
	./bin/strata bench append --writers 8 --batch 100 --duration 10s
	./bin/strata bench append --writers 8 --batch 1 --hot 4 --duration 10s
	./bin/strata bench replay
	./bin/strata bench subscribe --stream-subscribers 2000 --all-subscribers 20 --rate 500 --duration 30s
