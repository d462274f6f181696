package dynamostore_test

import (
	"context"
	"log"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/dynamostore"
)

// A Lambda function builds its store and engine once, at init time. AWS_ENDPOINT_URL_DYNAMODB, when set, points the
// SDK at a local DynamoDB.
func Example() {
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	store := dynamostore.New(dynamodb.NewFromConfig(cfg), os.Getenv("IDEMPOTENCY_TABLE"))
	engine := idempotent.New(store)
	_ = engine // wrap handlers with engine (see the idempotent and apigw packages)
}

// Several functions share one table: each prefixes its record IDs.
func ExampleNew_keyPrefix() {
	var client *dynamodb.Client // from dynamodb.NewFromConfig
	store := dynamostore.New(client, "idempotency", func(o *dynamostore.Options) {
		o.KeyPrefix = os.Getenv("AWS_LAMBDA_FUNCTION_NAME") + "#"
	})
	_ = store
}

// The sort-key layout of Powertools for AWS Lambda: partition key "pk" holds a static value, sort key "sk" the
// record key.
func ExampleNew_sortKey() {
	var client *dynamodb.Client
	opt := func(o *dynamostore.Options) {
		o.IDAttr = "pk"
		o.SortKeyAttr = "sk"
		o.StaticPartitionKey = "idempotency#payments"
	}
	if err := dynamostore.CreateTable(context.Background(), client, "shared", opt); err != nil {
		log.Fatal(err)
	}
	_ = dynamostore.New(client, "shared", opt)
}

// A handler hands its own DynamoDB write to the store: it commits in the same transaction as the completed
// record, or not at all.
func ExamplePut() {
	handler := func(ctx context.Context) (string, error) {
		put := &types.Put{
			TableName: aws.String("payments"),
			Item: map[string]types.AttributeValue{
				"id":     &types.AttributeValueMemberS{Value: "pay_123"},
				"amount": &types.AttributeValueMemberN{Value: "2000"},
			},
			ConditionExpression: aws.String("attribute_not_exists(id)"),
		}
		if !dynamostore.Put(ctx, put) {
			// Not in an idempotent execution: write it directly instead.
			var client *dynamodb.Client
			if _, err := client.PutItem(ctx, &dynamodb.PutItemInput{
				TableName: put.TableName, Item: put.Item, ConditionExpression: put.ConditionExpression,
			}); err != nil {
				return "", err
			}
		}
		return "pay_123", nil
	}
	_ = handler
}
