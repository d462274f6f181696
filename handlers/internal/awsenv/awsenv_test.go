package awsenv_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/handlers/internal/awsenv"
)

func TestTable(t *testing.T) {
	t.Setenv(awsenv.EnvPaymentsTable, "")
	assert.Equal(t, "PaymentsTable", awsenv.Table(awsenv.EnvPaymentsTable, awsenv.DefaultPaymentsTable))
	t.Setenv(awsenv.EnvPaymentsTable, " idemkit-PaymentsTable-ABC ")
	assert.Equal(t, "idemkit-PaymentsTable-ABC", awsenv.Table(awsenv.EnvPaymentsTable, awsenv.DefaultPaymentsTable))
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
	assert.True(t, awsenv.Transient(&types.ProvisionedThroughputExceededException{}))
	assert.True(t, awsenv.Transient(fmt.Errorf("op: %w", &types.RequestLimitExceeded{})))
	assert.True(t, awsenv.Transient(&types.TransactionConflictException{}))
	assert.True(t, awsenv.Transient(&types.InternalServerError{}))
	assert.True(t, awsenv.Transient(context.DeadlineExceeded))
	assert.False(t, awsenv.Transient(&types.ResourceNotFoundException{}))
	assert.False(t, awsenv.Transient(&types.ConditionalCheckFailedException{}))
	assert.False(t, awsenv.Transient(errors.New("x")))
}

func TestLogger(t *testing.T) {
	for level, want := range map[string]slog.Level{"": slog.LevelInfo, "DEBUG": slog.LevelDebug, "TRACE": slog.LevelDebug, "WARN": slog.LevelWarn, "ERROR": slog.LevelError} {
		t.Setenv("AWS_LAMBDA_LOG_LEVEL", level)
		l := awsenv.Logger()
		assert.True(t, l.Enabled(context.Background(), want), level)
		assert.False(t, l.Enabled(context.Background(), want-1), level)
	}
}
