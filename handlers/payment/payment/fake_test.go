package payment_test

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/require"
)

// fakeDB is the function-type fake of payment.DB: each call goes to the function set for it.
type fakeDB struct {
	getItem func(ctx context.Context, in *dynamodb.GetItemInput) (*dynamodb.GetItemOutput, error)
	putItem func(ctx context.Context, in *dynamodb.PutItemInput) (*dynamodb.PutItemOutput, error)
}

func (f fakeDB) GetItem(ctx context.Context, in *dynamodb.GetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	return f.getItem(ctx, in)
}

func (f fakeDB) PutItem(ctx context.Context, in *dynamodb.PutItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	return f.putItem(ctx, in)
}

// table is an in-memory table keyed by "id" with the one condition the service writes,
// attribute_not_exists(id), so unit tests see DynamoDB's semantics. It records every write.
type table struct {
	t      *testing.T
	name   string
	mu     sync.Mutex
	items  map[string]map[string]types.AttributeValue
	writes []map[string]types.AttributeValue
	gets   int
}

func newTable(t *testing.T) *table {
	return &table{t: t, name: "Payments", items: make(map[string]map[string]types.AttributeValue)}
}

func keyOf(t *testing.T, key map[string]types.AttributeValue) string {
	s, ok := key["id"].(*types.AttributeValueMemberS)
	require.True(t, ok, "key id must be a string attribute")
	return s.Value
}

func (tb *table) db() fakeDB {
	return fakeDB{getItem: tb.get, putItem: tb.put}
}

func (tb *table) get(_ context.Context, in *dynamodb.GetItemInput) (*dynamodb.GetItemOutput, error) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	require.Equal(tb.t, tb.name, aws.ToString(in.TableName))
	require.True(tb.t, aws.ToBool(in.ConsistentRead), "reads must be consistent")
	tb.gets++
	return &dynamodb.GetItemOutput{Item: tb.items[keyOf(tb.t, in.Key)]}, nil
}

func (tb *table) put(_ context.Context, in *dynamodb.PutItemInput) (*dynamodb.PutItemOutput, error) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	require.Equal(tb.t, tb.name, aws.ToString(in.TableName))
	id := keyOf(tb.t, in.Item)
	if in.ConditionExpression != nil {
		requireNotExistsOnID(tb.t, aws.ToString(in.ConditionExpression), in.ExpressionAttributeNames)
		if old, ok := tb.items[id]; ok {
			var ret map[string]types.AttributeValue
			if in.ReturnValuesOnConditionCheckFailure == types.ReturnValuesOnConditionCheckFailureAllOld {
				ret = old
			}
			return nil, &types.ConditionalCheckFailedException{Message: aws.String("The conditional request failed"), Item: ret}
		}
	}
	tb.items[id] = in.Item
	tb.writes = append(tb.writes, in.Item)
	return &dynamodb.PutItemOutput{}, nil
}

// requireNotExistsOnID checks that a condition is attribute_not_exists on the key attribute "id".
func requireNotExistsOnID(t *testing.T, cond string, names map[string]string) {
	t.Helper()
	require.True(t, strings.HasPrefix(cond, "attribute_not_exists (") || strings.HasPrefix(cond, "attribute_not_exists("), cond)
	placeholder := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(cond, "attribute_not_exists ("), "attribute_not_exists("), ")")
	require.Equal(t, "id", names[placeholder], "condition must be on the key attribute")
}

// loadEvent reads a REST proxy event from testdata (or any path).
func loadEvent(t *testing.T, path string) events.APIGatewayProxyRequest {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var ev events.APIGatewayProxyRequest
	require.NoError(t, json.Unmarshal(b, &ev))
	return ev
}

// attrStrings collects every string and number found anywhere in an item, nested maps and lists included.
func attrStrings(av types.AttributeValue) []string {
	switch v := av.(type) {
	case *types.AttributeValueMemberS:
		return []string{v.Value}
	case *types.AttributeValueMemberN:
		return []string{v.Value}
	case *types.AttributeValueMemberSS:
		return v.Value
	case *types.AttributeValueMemberNS:
		return v.Value
	case *types.AttributeValueMemberB:
		return []string{string(v.Value)}
	case *types.AttributeValueMemberM:
		var out []string
		for k, e := range v.Value {
			out = append(out, k)
			out = append(out, attrStrings(e)...)
		}
		return out
	case *types.AttributeValueMemberL:
		var out []string
		for _, e := range v.Value {
			out = append(out, attrStrings(e)...)
		}
		return out
	}
	return nil
}

func itemStrings(item map[string]types.AttributeValue) []string {
	return attrStrings(&types.AttributeValueMemberM{Value: item})
}
