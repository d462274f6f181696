package dynamostore_test

import (
	"context"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/idempotent/dynamostore"
	"github.com/idemkit/idemkit/internal/ddblocal/ddbtest"
)

func TestMain(m *testing.M) { os.Exit(ddbtest.Run(m)) }

// newTable creates an idempotency table on DynamoDB Local shaped for optFns.
func newTable(t testing.TB, optFns ...func(*dynamostore.Options)) string {
	t.Helper()
	client := ddbtest.Client(t)
	table := ddbtest.UniqueName(t, "idem")
	require.NoError(t, dynamostore.CreateTable(context.Background(), client, table, optFns...))
	t.Cleanup(func() {
		_, _ = client.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(table)})
	})
	return table
}

// calls counts DynamoDB round trips at the SDK's HTTP client, per operation (from the X-Amz-Target header), so
// SDK retries and hidden extra calls would show.
type calls struct {
	next dynamodb.HTTPClient
	mu   sync.Mutex
	n    map[string]int
}

func (c *calls) Do(r *http.Request) (*http.Response, error) {
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "DynamoDB_20120810.")
	c.mu.Lock()
	c.n[op]++
	c.mu.Unlock()
	return c.next.Do(r)
}

// take returns the counts since the last take and resets them.
func (c *calls) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = map[string]int{}
	return n
}

// countingClient returns a client for DynamoDB Local whose HTTP round trips are counted.
func countingClient(t testing.TB) (*dynamodb.Client, *calls) {
	t.Helper()
	base := ddbtest.Client(t)
	c := &calls{n: map[string]int{}}
	client := dynamodb.New(base.Options(), func(o *dynamodb.Options) {
		c.next = o.HTTPClient
		o.HTTPClient = c
	})
	return client, c
}

// rawGet reads an item as stored.
func rawGet(t *testing.T, table string, key map[string]types.AttributeValue) map[string]types.AttributeValue {
	t.Helper()
	out, err := ddbtest.Client(t).GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: aws.String(table), Key: key, ConsistentRead: aws.Bool(true),
	})
	require.NoError(t, err)
	return out.Item
}

func idKey(id string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: id}}
}
