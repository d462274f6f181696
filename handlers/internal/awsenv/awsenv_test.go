package awsenv_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/handlers/internal/awsenv"
	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/dynamostore"
)

func TestTable(t *testing.T) {
	t.Setenv(awsenv.EnvPaymentsTable, " idemkit-PaymentsTable-ABC ")
	name, err := awsenv.Table(awsenv.EnvPaymentsTable, awsenv.DefaultPaymentsTable)
	require.NoError(t, err)
	assert.Equal(t, "idemkit-PaymentsTable-ABC", name)

	for _, blank := range []string{"", "  "} {
		t.Setenv(awsenv.EnvPaymentsTable, blank)
		_, err = awsenv.Table(awsenv.EnvPaymentsTable, awsenv.DefaultPaymentsTable)
		require.Error(t, err, "a set but blank table name is refused, not replaced by the local default")
		assert.Equal(t, "PAYMENTS_TABLE is set but empty: it must name the DynamoDB table", err.Error())
	}

	require.NoError(t, os.Unsetenv(awsenv.EnvPaymentsTable)) // t.Setenv above restores it after the test
	name, err = awsenv.Table(awsenv.EnvPaymentsTable, awsenv.DefaultPaymentsTable)
	require.NoError(t, err)
	assert.Equal(t, "PaymentsTable", name, "unset: the local default (CONTRACT §4)")
}

// engineRefuses runs awsenv.Engine in a child process of the test binary (t's top-level test again, with env
// added) and checks that the function's init stops there: exit status 1, no engine, and one JSON log line at
// ERROR, which it returns for the caller to check. In the child it runs Engine, which must exit; should it return,
// the child says so and exits 0, which fails the parent's check.
func engineRefuses(t *testing.T, env ...string) map[string]any {
	t.Helper()
	if os.Getenv("AWSENV_TEST_CHILD") == "1" {
		awsenv.Engine(&claimRecorder{}, awsenv.Logger())
		fmt.Println("engine created")
		os.Exit(0)
	}
	top, _, _ := strings.Cut(t.Name(), "/")
	cmd := exec.Command(os.Args[0], "-test.run=^"+top+"$")
	cmd.Env = append(append(os.Environ(), "AWSENV_TEST_CHILD=1"), env...)
	out, err := cmd.Output()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "output: %s", out)
	assert.Equal(t, 1, exit.ExitCode())
	assert.NotContains(t, string(out), "engine created")
	var line map[string]any
	require.NoError(t, json.Unmarshal(bytes.TrimSpace(out), &line), "one JSON log line: %s", out)
	assert.Equal(t, "ERROR", line["level"])
	return line
}

// TestEngineRefusesAnEmptyTable: IDEMPOTENCY_TABLE set but empty must stop the function's init with an ERROR line
// naming the variable and exit status 1, not answer every request 503.
func TestEngineRefusesAnEmptyTable(t *testing.T) {
	line := engineRefuses(t, awsenv.EnvIdempotencyTable+"= ")
	assert.Equal(t, "IDEMPOTENCY_TABLE is set but empty: it must name the DynamoDB table", line["error"])
}

func TestLoadDynamoDBLocalDefaults(t *testing.T) {
	for _, k := range []string{"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SESSION_TOKEN"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:8000")

	client, err := awsenv.LoadDynamoDB(context.Background())
	require.NoError(t, err)
	o := client.Options()
	assert.Equal(t, "us-east-1", o.Region)
	assert.Equal(t, "http://127.0.0.1:8000", aws.ToString(o.BaseEndpoint), "the SDK reads the service endpoint variable")
	creds, err := o.Credentials.Retrieve(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "local", creds.AccessKeyID)

	t.Setenv("AWS_REGION", "eu-west-1")
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", "") // as template.yaml declares it: empty means unset
	client, err = awsenv.LoadDynamoDB(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "eu-west-1", client.Options().Region)
	assert.Nil(t, client.Options().BaseEndpoint)
}

func TestTransient(t *testing.T) {
	reset := &smithyhttp.RequestSendError{Err: &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}}
	serverFault := &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: 503}}, Err: errors.New("x")}
	clientFault := &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: 400}}, Err: errors.New("x")}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"throttled", &types.ProvisionedThroughputExceededException{}, true},
		{"request limit, wrapped", fmt.Errorf("op: %w", &types.RequestLimitExceeded{}), true},
		{"transaction conflict", &types.TransactionConflictException{}, true},
		{"internal server error", &types.InternalServerError{}, true},
		{"an unknown server fault", &smithy.GenericAPIError{Code: "SomethingNew", Fault: smithy.FaultServer}, true},
		{"HTTP 503 without a code", serverFault, true},
		{"connection reset on every attempt", fmt.Errorf("operation error DynamoDB: GetItem, exceeded maximum number of attempts, 3: %w", reset), true},
		{"bare reset", syscall.ECONNRESET, true},
		{"connection refused", syscall.ECONNREFUSED, true},
		{"truncated answer", io.ErrUnexpectedEOF, true},
		{"deadline", context.DeadlineExceeded, true},
		{"net timeout", &net.OpError{Op: "dial", Err: timeoutErr{}}, true},

		{"nil", nil, false},
		{"missing table", &types.ResourceNotFoundException{}, false},
		{"access denied", &smithy.GenericAPIError{Code: "AccessDeniedException", Fault: smithy.FaultClient}, false},
		{"validation", &smithy.GenericAPIError{Code: "ValidationException", Fault: smithy.FaultClient}, false},
		{"condition failed", &types.ConditionalCheckFailedException{}, false},
		{"HTTP 400 without a code", clientFault, false},
		{"cancelled by the caller", context.Canceled, false},
		{"anything else", errors.New("x"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, awsenv.Transient(tc.err))
		})
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// TestSDKLogger: the SDK's lines come out as the function's JSON lines, at the SDK's level, marked as the SDK's.
func TestSDKLogger(t *testing.T) {
	var buf bytes.Buffer
	l := awsenv.SDKLogger(idempotent.NewLogger(&buf))
	l.Logf(logging.Warn, "failed to %s", "close")
	l.Logf(logging.Debug, "debug lines are filtered at INFO")
	var line map[string]any
	require.NoError(t, json.Unmarshal(bytes.TrimSpace(buf.Bytes()), &line), "exactly one JSON line: %s", buf.String())
	assert.Equal(t, "WARN", line["level"])
	assert.Equal(t, "failed to close", line["message"])
	assert.Equal(t, "aws-sdk", line["logger"])
}

func TestLogger(t *testing.T) {
	for level, want := range map[string]slog.Level{"": slog.LevelInfo, "DEBUG": slog.LevelDebug, "TRACE": slog.LevelDebug, "WARN": slog.LevelWarn, "ERROR": slog.LevelError} {
		t.Setenv("AWS_LAMBDA_LOG_LEVEL", level)
		l := awsenv.Logger()
		assert.True(t, l.Enabled(context.Background(), want), level)
		assert.False(t, l.Enabled(context.Background(), want-1), level)
	}
}

func TestLeasePolicy(t *testing.T) {
	tests := []struct {
		value   string
		want    idempotent.LeasePolicy
		wantErr bool
	}{
		{value: "", want: idempotent.LeaseReRun},
		{value: "rerun", want: idempotent.LeaseReRun},
		{value: " ReRun ", want: idempotent.LeaseReRun},
		{value: "refuse", want: idempotent.LeaseRefuse},
		{value: "REFUSE", want: idempotent.LeaseRefuse},
		{value: "re-run", wantErr: true},
		{value: "retry", wantErr: true},
		{value: "true", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%q", tc.value), func(t *testing.T) {
			t.Setenv(awsenv.EnvLeasePolicy, tc.value)
			got, err := awsenv.LeasePolicy()
			if tc.wantErr {
				require.Error(t, err)
				assert.Contains(t, err.Error(), "IDEMPOTENCY_LEASE_POLICY")
				assert.Contains(t, err.Error(), fmt.Sprintf("%q", strings.TrimSpace(tc.value)))
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

// claimRecorder is a DynamoDB that accepts every write and keeps the claim's PutItem.
type claimRecorder struct {
	dynamostore.API
	claim *dynamodb.PutItemInput
}

func (c *claimRecorder) PutItem(_ context.Context, in *dynamodb.PutItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if c.claim == nil {
		c.claim = in
	}
	return &dynamodb.PutItemOutput{}, nil
}

// TestEngineLeasePolicy: the policy reaches the claim's condition, which may take over an ended lease only under
// rerun.
func TestEngineLeasePolicy(t *testing.T) {
	tests := []struct {
		value    string
		takeover bool
	}{{"", true}, {"rerun", true}, {"refuse", false}}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%q", tc.value), func(t *testing.T) {
			t.Setenv(awsenv.EnvLeasePolicy, tc.value)
			db := &claimRecorder{}
			engine := awsenv.Engine(db, slog.New(slog.NewTextHandler(io.Discard, nil)))
			scope := idempotent.Scope{Principal: "anonymous", Method: "POST", Route: "/payments"}
			_, err := idempotent.Run(context.Background(), engine, idempotent.Request{Key: "k", Scope: scope, Fingerprint: "fp"},
				idempotent.Spec[string]{}, func(context.Context) (string, error) { return "ok", nil })
			require.NoError(t, err)
			require.NotNil(t, db.claim)
			assert.Equal(t, tc.takeover, slices.Contains(slices.Collect(maps.Values(db.claim.ExpressionAttributeNames)), "in_progress_expiration"),
				"the claim condition takes over an ended lease: %s", aws.ToString(db.claim.ConditionExpression))
		})
	}
}

// TestEngineRefusesAnInvalidLeasePolicy: an invalid value must stop the function's init with an ERROR line naming
// the variable and exit status 1.
func TestEngineRefusesAnInvalidLeasePolicy(t *testing.T) {
	line := engineRefuses(t, awsenv.EnvLeasePolicy+"=sometimes")
	assert.Equal(t, "invalid configuration", line["message"])
	assert.Equal(t, `IDEMPOTENCY_LEASE_POLICY="sometimes": want "rerun" or "refuse"`, line["error"])
}

// runningElsewhere is a DynamoDB whose key is held by a running request that has completed by the first read.
type runningElsewhere struct {
	dynamostore.API
	id    string
	reads int
}

func (r *runningElsewhere) item(status string) map[string]types.AttributeValue {
	now := time.Now()
	it := map[string]types.AttributeValue{
		"id":         &types.AttributeValueMemberS{Value: r.id},
		"status":     &types.AttributeValueMemberS{Value: status},
		"expiration": &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Add(time.Hour).Unix(), 10)},
		"validation": &types.AttributeValueMemberS{Value: "fp"},
		"owner":      &types.AttributeValueMemberS{Value: "elsewhere"},
	}
	if status == "INPROGRESS" {
		it["in_progress_expiration"] = &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Add(time.Minute).UnixMilli(), 10)}
	} else {
		it["data"] = &types.AttributeValueMemberS{Value: `"first answer"`}
	}
	return it
}

func (r *runningElsewhere) PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	return nil, &types.ConditionalCheckFailedException{Item: r.item("INPROGRESS")}
}

func (r *runningElsewhere) GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	r.reads++
	return &dynamodb.GetItemOutput{Item: r.item("COMPLETED")}, nil
}

// TestEngineWaitsForARunningRequest: a duplicate of a running request waits for its answer instead of a 409.
func TestEngineWaitsForARunningRequest(t *testing.T) {
	scope := idempotent.Scope{Principal: "anonymous", Method: "POST", Route: "/payments"}
	db := &runningElsewhere{id: scope.ID("k")}
	engine := awsenv.Engine(db, slog.New(slog.NewTextHandler(io.Discard, nil)))
	res, err := idempotent.Run(context.Background(), engine, idempotent.Request{Key: "k", Scope: scope, Fingerprint: "fp"},
		idempotent.Spec[string]{}, func(context.Context) (string, error) { return "second run", nil })
	require.NoError(t, err)
	assert.True(t, res.Replayed())
	assert.Equal(t, "first answer", res.Value)
	assert.Equal(t, 1, db.reads, "one consistent read found the answer")
}
