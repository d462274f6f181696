package user_test

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

// fakeDB is the function-type fake of user.DB.
type fakeDB struct {
	getItem            func(ctx context.Context, in *dynamodb.GetItemInput) (*dynamodb.GetItemOutput, error)
	transactWriteItems func(ctx context.Context, in *dynamodb.TransactWriteItemsInput) (*dynamodb.TransactWriteItemsOutput, error)
}

func (f fakeDB) GetItem(ctx context.Context, in *dynamodb.GetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	return f.getItem(ctx, in)
}

func (f fakeDB) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, _ ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	return f.transactWriteItems(ctx, in)
}

// table is an in-memory users table with DynamoDB's transaction semantics for conditional Puts: all
// conditions are checked first, cancellation reasons come back in item order (with ALL_OLD items when asked),
// and either every Put applies or none does.
type table struct {
	t     *testing.T
	name  string
	mu    sync.Mutex
	items map[string]map[string]types.AttributeValue
	txs   []*dynamodb.TransactWriteItemsInput
}

func newTable(t *testing.T) *table {
	return &table{t: t, name: "Users", items: make(map[string]map[string]types.AttributeValue)}
}

func (tb *table) db() fakeDB { return fakeDB{getItem: tb.get, transactWriteItems: tb.transact} }

func idOf(t *testing.T, m map[string]types.AttributeValue) string {
	s, ok := m["id"].(*types.AttributeValueMemberS)
	require.True(t, ok)
	return s.Value
}

func (tb *table) get(_ context.Context, in *dynamodb.GetItemInput) (*dynamodb.GetItemOutput, error) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	require.Equal(tb.t, tb.name, aws.ToString(in.TableName))
	require.True(tb.t, aws.ToBool(in.ConsistentRead))
	return &dynamodb.GetItemOutput{Item: tb.items[idOf(tb.t, in.Key)]}, nil
}

func (tb *table) transact(_ context.Context, in *dynamodb.TransactWriteItemsInput) (*dynamodb.TransactWriteItemsOutput, error) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	tb.txs = append(tb.txs, in)
	reasons := make([]types.CancellationReason, len(in.TransactItems))
	failed := false
	for i, w := range in.TransactItems {
		require.NotNil(tb.t, w.Put, "the registration only puts")
		require.Equal(tb.t, tb.name, aws.ToString(w.Put.TableName))
		cond := aws.ToString(w.Put.ConditionExpression)
		require.True(tb.t, strings.HasPrefix(cond, "attribute_not_exists ("), cond)
		require.Equal(tb.t, "id", w.Put.ExpressionAttributeNames[strings.TrimSuffix(strings.TrimPrefix(cond, "attribute_not_exists ("), ")")])
		reasons[i] = types.CancellationReason{Code: aws.String("None")}
		if old, ok := tb.items[idOf(tb.t, w.Put.Item)]; ok {
			failed = true
			reasons[i] = types.CancellationReason{Code: aws.String("ConditionalCheckFailed"), Message: aws.String("The conditional request failed")}
			if w.Put.ReturnValuesOnConditionCheckFailure == types.ReturnValuesOnConditionCheckFailureAllOld {
				reasons[i].Item = old
			}
		}
	}
	if failed {
		return nil, &types.TransactionCanceledException{
			Message:             aws.String("Transaction cancelled, please refer cancellation reasons for specific reasons"),
			CancellationReasons: reasons,
		}
	}
	for _, w := range in.TransactItems {
		tb.items[idOf(tb.t, w.Put.Item)] = w.Put.Item
	}
	return &dynamodb.TransactWriteItemsOutput{}, nil
}

func loadEvent(t *testing.T, path string) events.APIGatewayProxyRequest {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var ev events.APIGatewayProxyRequest
	require.NoError(t, json.Unmarshal(b, &ev))
	return ev
}
