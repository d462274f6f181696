// Package awsenv is the configuration every function of the example service reads from its environment: table
// names, the DynamoDB client, the logger, and which AWS errors are worth a retry.
package awsenv

import (
	"context"
	"errors"
	"fmt"
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

	// EnvLeasePolicy says what happens to a key whose invocation crashed or timed out before recording its
	// outcome, once the claim's lease has ended: "rerun" (the default) lets the next request run the handler
	// again, "refuse" answers 409 outcome-unknown until the record expires (idempotent.LeasePolicy).
	EnvLeasePolicy = "IDEMPOTENCY_LEASE_POLICY"

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

// Engine returns a function's idempotency engine: records in the IDEMPOTENCY_TABLE table, the lease policy of
// IDEMPOTENCY_LEASE_POLICY, CloudWatch EMF counts per outcome on stdout (namespace "idemkit", dimension Service =
// the function's name), a small per-instance cache so a duplicate landing on a warm instance costs no
// DynamoDB call, and waiting (idempotent.DefaultWait) so a duplicate that arrives while its first request runs gets
// that request's answer instead of a 409. It makes no call itself: nothing touches DynamoDB during init.
//
// An invalid IDEMPOTENCY_LEASE_POLICY stops the process (an ERROR line naming the variable, then exit status 1),
// which Lambda reports as an init failure: a function must not serve requests under a policy it was not given.
func Engine(db dynamostore.API, logger *slog.Logger) *idempotent.Engine {
	policy, err := LeasePolicy()
	if err != nil {
		logger.Error("invalid configuration", "error", err.Error())
		os.Exit(1)
	}
	store := dynamostore.New(db, Table(EnvIdempotencyTable, DefaultIdempotencyTable), func(o *dynamostore.Options) {
		o.Logger = logger
	})
	return idempotent.New(store,
		idempotent.WithLogger(logger),
		idempotent.WithLeasePolicy(policy),
		idempotent.WithMetrics(os.Stdout, "idemkit", os.Getenv("AWS_LAMBDA_FUNCTION_NAME")),
		idempotent.WithLocalCache(1024, time.Minute),
		idempotent.WithWait(idempotent.DefaultWait),
	)
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
