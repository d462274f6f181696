// Package awsenv is the configuration every function of the example service reads from its environment: table
// names, the DynamoDB client, the logger, and which AWS errors are worth a retry.
package awsenv

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/dynamostore"
)

// Environment variables of the functions (CONTRACT §4) and their local defaults: the template's logical IDs,
// which is also what `make run` names the tables it creates.
const (
	EnvIdempotencyTable = "IDEMPOTENCY_TABLE"
	EnvPaymentsTable    = "PAYMENTS_TABLE"
	EnvUsersTable       = "USERS_TABLE"

	DefaultIdempotencyTable = "IdempotencyTable"
	DefaultPaymentsTable    = "PaymentsTable"
	DefaultUsersTable       = "UsersTable"

	// DefaultRegion is used when neither AWS_REGION nor AWS_DEFAULT_REGION nor a profile names one (local runs;
	// Lambda always sets AWS_REGION).
	DefaultRegion = "us-east-1"
)

// Table returns the value of the environment variable env, or def when it is unset or empty.
func Table(env, def string) string {
	if v := strings.TrimSpace(os.Getenv(env)); v != "" {
		return v
	}
	return def
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
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, err
	}
	return dynamodb.NewFromConfig(cfg), nil
}

// Logger returns a JSON logger on stdout, the shape Lambda's JSON log format expects from a custom runtime,
// at the level Lambda passes in AWS_LAMBDA_LOG_LEVEL (INFO when unset), so the function's log-level
// setting filters application logs.
func Logger() *slog.Logger { return idempotent.NewLogger(os.Stdout) }

// Engine returns a function's idempotency engine: records in the IDEMPOTENCY_TABLE table, CloudWatch EMF counts
// per outcome on stdout (namespace "idemkit", dimension Service = the function's name), and a small per-instance
// cache so a duplicate landing on a warm instance costs no DynamoDB call. It makes no call itself: nothing
// touches DynamoDB during init.
func Engine(db dynamostore.API, logger *slog.Logger) *idempotent.Engine {
	store := dynamostore.New(db, Table(EnvIdempotencyTable, DefaultIdempotencyTable), func(o *dynamostore.Options) {
		o.Logger = logger
	})
	return idempotent.New(store,
		idempotent.WithLogger(logger),
		idempotent.WithMetrics(os.Stdout, "idemkit", os.Getenv("AWS_LAMBDA_FUNCTION_NAME")),
		idempotent.WithLocalCache(1024, time.Minute),
	)
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

// Transient reports whether err is worth retrying later (answer 503 + Retry-After) rather than a fault (500).
func Transient(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return transientCodes[ae.ErrorCode()]
	}
	var re interface{ Timeout() bool }
	if errors.As(err, &re) && re.Timeout() {
		return true
	}
	return errors.Is(err, context.DeadlineExceeded)
}
