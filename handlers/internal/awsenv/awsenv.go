// Package awsenv is the configuration every function of the example service reads from its environment: table
// names, the DynamoDB client, the logger, and which AWS errors are worth a retry.
package awsenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/redis/go-redis/v9"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/dynamostore"
	"github.com/idemkit/idemkit/idempotent/redisstore"
)

// Values of IDEMPOTENCY_STORE.
const (
	StoreDynamoDB = "dynamodb"
	StoreRedis    = "redis"
)

// Environment variables of the functions (declared in template.yaml) and their local defaults: the template's
// logical IDs, which is also what `make run` names the tables it creates.
const (
	EnvIdempotencyTable = "IDEMPOTENCY_TABLE"
	EnvPaymentsTable    = "PAYMENTS_TABLE"
	EnvUsersTable       = "USERS_TABLE"

	// EnvLeasePolicy says what happens to a key whose invocation crashed or timed out before recording its
	// outcome, once the claim's lease has ended: "rerun" (the default) lets the next request run the handler
	// again, "refuse" answers 409 outcome-unknown until the record expires (idempotent.LeasePolicy).
	EnvLeasePolicy = "IDEMPOTENCY_LEASE_POLICY"

	// EnvIdempotencyStore selects where the idempotency records live: "dynamodb" (the default: the
	// IDEMPOTENCY_TABLE table, with atomic completion) or "redis" (Redis, Valkey or ElastiCache at REDIS_URL).
	EnvIdempotencyStore = "IDEMPOTENCY_STORE"
	// EnvRedisURL is the Redis endpoint when IDEMPOTENCY_STORE is "redis": redis://host:6379/0, or
	// rediss://user:password@host:6379 for TLS and AUTH (redis.ParseURL). Point it at the primary endpoint.
	EnvRedisURL = "REDIS_URL"

	DefaultIdempotencyTable = "IdempotencyTable"
	DefaultPaymentsTable    = "PaymentsTable"
	DefaultUsersTable       = "UsersTable"

	// DefaultRegion is used when neither AWS_REGION nor AWS_DEFAULT_REGION nor a profile names one (local runs;
	// Lambda always sets AWS_REGION).
	DefaultRegion = "us-east-1"
)

// Table returns the table name in the environment variable env, trimmed, or def when the variable is unset
// (local runs: CONTRACT §4's defaults). A variable that is set but blank is an error naming it: a deployed
// function whose table reference came out empty must not fall back to a default table that does not exist
// and then answer every request with a store error.
func Table(env, def string) (string, error) {
	v, ok := os.LookupEnv(env)
	if !ok {
		return def, nil
	}
	if v = strings.TrimSpace(v); v == "" {
		return "", fmt.Errorf("%s is set but empty: it must name the DynamoDB table", env)
	}
	return v, nil
}

// MustTable is Table for a function's init: a blank variable stops the process with an ERROR line naming it and
// exit status 1, which Lambda reports as an init failure, rather than a function that can never succeed.
func MustTable(logger *slog.Logger, env, def string) string {
	name, err := Table(env, def)
	if err != nil {
		logger.Error("invalid configuration", "error", err.Error())
		os.Exit(1)
	}
	return name
}

// LoadDynamoDB creates the DynamoDB client once per execution environment (call it from main, not per request).
// The SDK itself honours AWS_ENDPOINT_URL_DYNAMODB (an empty value counts as unset, so the template can declare
// it empty for `sam local` to override). When that endpoint is set and no credentials are in the environment,
// static dummy credentials are used, as DynamoDB Local accepts any.
func LoadDynamoDB(ctx context.Context) (*dynamodb.Client, error) {
	var opts []func(*config.LoadOptions) error
	if os.Getenv("AWS_REGION") == "" && os.Getenv("AWS_DEFAULT_REGION") == "" {
		opts = append(opts, config.WithDefaultRegion(DefaultRegion))
	}
	if os.Getenv("AWS_ENDPOINT_URL_DYNAMODB") != "" && os.Getenv("AWS_ACCESS_KEY_ID") == "" &&
		os.Getenv("AWS_PROFILE") == "" {
		opts = append(opts, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("local", "local", "")))
	}
	// The SDK's own log lines (retries, warnings) go out as JSON lines like the function's, so Lambda's JSON log
	// format and log-level filtering treat them alike; the SDK's default is a plain-text "SDK <date> WARN" line.
	opts = append(opts, config.WithLogger(SDKLogger(Logger())))
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, err
	}
	return dynamodb.NewFromConfig(cfg, dynamostore.SkipAbsentChecksum), nil
}

// SDKLogger adapts l to the SDK's logger: each SDK line becomes one record at the SDK's classification (WARN or
// DEBUG), with the attribute "logger" = "aws-sdk" saying where it came from.
func SDKLogger(l *slog.Logger) logging.Logger {
	l = l.With("logger", "aws-sdk")
	return logging.LoggerFunc(func(c logging.Classification, format string, v ...any) {
		level := slog.LevelInfo
		switch c {
		case logging.Warn:
			level = slog.LevelWarn
		case logging.Debug:
			level = slog.LevelDebug
		}
		if l.Enabled(context.Background(), level) {
			l.Log(context.Background(), level, fmt.Sprintf(format, v...))
		}
	})
}

// Logger returns a JSON logger on stdout, the shape Lambda's JSON log format expects from a custom runtime,
// at the level Lambda passes in AWS_LAMBDA_LOG_LEVEL (INFO when unset), so the function's log-level
// setting filters application logs.
func Logger() *slog.Logger { return idempotent.NewLogger(os.Stdout) }

// Engine returns a function's idempotency engine: records in the store IDEMPOTENCY_STORE selects (the
// IDEMPOTENCY_TABLE table by default, or Redis at REDIS_URL), the lease policy of IDEMPOTENCY_LEASE_POLICY,
// CloudWatch EMF counts per outcome on stdout (namespace "idemkit", dimension Service = the function's name), a
// small per-instance cache so a duplicate landing on a warm instance costs no store call, and waiting
// (idempotent.DefaultWait) so a duplicate that arrives while its first request runs gets that request's answer
// instead of a 409. It makes no call itself: nothing touches DynamoDB or Redis during init (go-redis connects on
// the first command).
//
// An invalid IDEMPOTENCY_LEASE_POLICY, IDEMPOTENCY_STORE or REDIS_URL stops the process (an ERROR line naming the
// variable, then exit status 1), which Lambda reports as an init failure: a function must not serve requests
// under a configuration it was not given.
func Engine(db dynamostore.API, logger *slog.Logger) *idempotent.Engine {
	policy, err := LeasePolicy()
	if err == nil {
		var store idempotent.Store
		if store, err = Store(db, logger); err == nil {
			return idempotent.New(store,
				idempotent.WithLogger(logger),
				idempotent.WithLeasePolicy(policy),
				idempotent.WithMetrics(os.Stdout, "idemkit", os.Getenv("AWS_LAMBDA_FUNCTION_NAME")),
				idempotent.WithLocalCache(1024, time.Minute),
				idempotent.WithWait(idempotent.DefaultWait),
			)
		}
	}
	logger.Error("invalid configuration", "error", err.Error())
	os.Exit(1)
	return nil
}

// StoreKind reads IDEMPOTENCY_STORE: StoreDynamoDB (also when unset or empty) or StoreRedis, in any case. Any
// other value is an error that names the variable.
func StoreKind() (string, error) {
	v := strings.TrimSpace(os.Getenv(EnvIdempotencyStore))
	switch strings.ToLower(v) {
	case "", StoreDynamoDB:
		return StoreDynamoDB, nil
	case StoreRedis:
		return StoreRedis, nil
	}
	return "", fmt.Errorf("%s=%q: want %q or %q", EnvIdempotencyStore, v, StoreDynamoDB, StoreRedis)
}

// AtomicCompletion reports whether the configured store commits a handler's DynamoDB write in the same
// transaction as the idempotency record (idempotent.AddEffect): DynamoDB does; Redis cannot, so a handler writes
// directly and relies on its own conditional write (the payment service's deterministic payment ID).
func AtomicCompletion() bool {
	kind, err := StoreKind()
	return err == nil && kind == StoreDynamoDB
}

// Store returns the idempotency store IDEMPOTENCY_STORE selects: dynamostore on db and the IDEMPOTENCY_TABLE table,
// or redisstore on a client for REDIS_URL.
func Store(db dynamostore.API, logger *slog.Logger) (idempotent.Store, error) {
	kind, err := StoreKind()
	if err != nil {
		return nil, err
	}
	if kind == StoreRedis {
		client, err := RedisClient()
		if err != nil {
			return nil, err
		}
		return redisstore.New(client, func(o *redisstore.Options) { o.Logger = logger }), nil
	}
	table, err := Table(EnvIdempotencyTable, DefaultIdempotencyTable)
	if err != nil {
		return nil, err
	}
	return dynamostore.New(db, table, func(o *dynamostore.Options) {
		o.Logger = logger
	}), nil
}

// RedisClient returns a client for REDIS_URL (rediss:// for TLS; user and password in the URL for AUTH), whose
// calls are bounded by their contexts' deadlines (the engine's, hence the invocation's). It connects lazily.
func RedisClient() (*redis.Client, error) {
	url := strings.TrimSpace(os.Getenv(EnvRedisURL))
	if url == "" {
		return nil, fmt.Errorf("%s is empty: %s=%s needs the Redis endpoint, such as redis://127.0.0.1:6379", EnvRedisURL, EnvIdempotencyStore, StoreRedis)
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		// The error of ParseURL may quote the URL, and with it a password: name the variable only.
		return nil, fmt.Errorf("%s is not a valid redis:// or rediss:// URL", EnvRedisURL)
	}
	opt.ContextTimeoutEnabled = true
	return redis.NewClient(opt), nil
}

// LeasePolicy reads IDEMPOTENCY_LEASE_POLICY: "rerun" (also when unset or empty) or "refuse", in any case. Any
// other value is an error that names the variable.
func LeasePolicy() (idempotent.LeasePolicy, error) {
	v := strings.TrimSpace(os.Getenv(EnvLeasePolicy))
	switch strings.ToLower(v) {
	case "", idempotent.LeaseReRun.String():
		return idempotent.LeaseReRun, nil
	case idempotent.LeaseRefuse.String():
		return idempotent.LeaseRefuse, nil
	}
	return idempotent.LeaseReRun, fmt.Errorf("%s=%q: want %q or %q", EnvLeasePolicy, v, idempotent.LeaseReRun, idempotent.LeaseRefuse)
}

// transientCodes are DynamoDB error codes that mean "not now" rather than "never": throttling, capacity and
// contention between transactions. The SDK has already retried them when they reach the caller.
var transientCodes = map[string]bool{
	"ProvisionedThroughputExceededException": true,
	"ThrottlingException":                    true,
	"RequestLimitExceeded":                   true,
	"LimitExceededException":                 true,
	"InternalServerError":                    true,
	"ServiceUnavailable":                     true,
	"TransactionConflictException":           true,
	"TransactionInProgressException":         true,
}

// Transient reports whether err is worth retrying later (answer 503 + Retry-After) rather than a fault that a
// retry meets again (500): throttling and contention codes, any server-side fault (HTTP 5xx), and failures to
// reach DynamoDB or to read its answer (connection refused or reset on every attempt, a truncated answer,
// timeouts). Everything else, a missing table, denied access, a malformed request, is permanent.
func Transient(err error) bool {
	if err == nil {
		return false
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		if transientCodes[ae.ErrorCode()] || ae.ErrorFault() == smithy.FaultServer {
			return true
		}
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() >= 500 {
		return true
	}
	// The request did not get through, or its answer did not come back: the connection, not the request, failed.
	var se *smithyhttp.RequestSendError
	if errors.As(err, &se) {
		return true
	}
	var te interface{ Timeout() bool }
	if errors.As(err, &te) && te.Timeout() {
		return true
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, io.ErrUnexpectedEOF)
}
