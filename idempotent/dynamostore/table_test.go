package dynamostore_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/dynamostore"
	"github.com/idemkit/idemkit/internal/ddblocal/ddbtest"
)

func TestCreateTable(t *testing.T) {
	client := ddbtest.Client(t)
	ctx := context.Background()
	cases := map[string]struct {
		opt  func(*dynamostore.Options)
		keys map[string]types.KeyType
		ttl  string
	}{
		"Default": {func(*dynamostore.Options) {}, map[string]types.KeyType{"id": types.KeyTypeHash}, "expiration"},
		"SortKey": {
			func(o *dynamostore.Options) { o.SortKeyAttr = "sk"; o.ExpirationAttr = "ttl" },
			map[string]types.KeyType{"id": types.KeyTypeHash, "sk": types.KeyTypeRange}, "ttl",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			table := newTable(t, tc.opt)
			// A second call on the existing table is a no-op.
			require.NoError(t, dynamostore.CreateTable(ctx, client, table, tc.opt))

			d, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
			require.NoError(t, err)
			assert.Equal(t, types.TableStatusActive, d.Table.TableStatus)
			got := map[string]types.KeyType{}
			for _, k := range d.Table.KeySchema {
				got[aws.ToString(k.AttributeName)] = k.KeyType
			}
			assert.Equal(t, tc.keys, got)
			for _, a := range d.Table.AttributeDefinitions {
				assert.Equal(t, types.ScalarAttributeTypeS, a.AttributeType)
			}
			require.NotNil(t, d.Table.BillingModeSummary)
			assert.Equal(t, types.BillingModePayPerRequest, d.Table.BillingModeSummary.BillingMode)

			ttl, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(table)})
			require.NoError(t, err)
			assert.Equal(t, types.TimeToLiveStatusEnabled, ttl.TimeToLiveDescription.TimeToLiveStatus)
			assert.Equal(t, tc.ttl, aws.ToString(ttl.TimeToLiveDescription.AttributeName))
		})
	}

	t.Run("WrongShapeIsAnError", func(t *testing.T) {
		table := newTable(t)
		err := dynamostore.CreateTable(ctx, client, table, func(o *dynamostore.Options) { o.SortKeyAttr = "sk" })
		require.ErrorContains(t, err, "key schema")
		err = dynamostore.CreateTable(ctx, client, table, func(o *dynamostore.Options) { o.ExpirationAttr = "other" })
		require.ErrorContains(t, err, "TTL on attribute")
	})
}

// The standard AWS_ENDPOINT_URL_DYNAMODB variable, read by config.LoadDefaultConfig, points a plain SDK client at
// DynamoDB Local (CONTRACT §4): no idemkit-specific endpoint setting is needed.
func TestEndpointFromEnvironment(t *testing.T) {
	table := newTable(t)
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_ENDPOINT_URL", "")
	t.Setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "")
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", ddbtest.Endpoint(t))
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("local", "local", "")),
	)
	require.NoError(t, err)
	store := dynamostore.New(dynamodb.NewFromConfig(cfg), table)

	now := time.Now()
	rec := idempotent.Record{
		ID: scope.ID("env-endpoint"), Status: idempotent.StatusInProgress, Fingerprint: "fp", Owner: "o",
		LeaseEnd: now.Add(time.Minute), ExpiresAt: now.Add(time.Hour),
	}
	existing, err := store.Claim(context.Background(), idempotent.Claim{Record: rec, Now: now})
	require.NoError(t, err)
	require.Nil(t, existing)
	item := rawGet(t, table, idKey(rec.ID)) // through ddbtest's own client
	require.NotNil(t, item, "the claim landed in DynamoDB Local")
	assert.Equal(t, &types.AttributeValueMemberS{Value: "INPROGRESS"}, item["status"])
}
