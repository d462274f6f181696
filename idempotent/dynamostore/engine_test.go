package dynamostore_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/dynamostore"
	"github.com/idemkit/idemkit/idempotent/idempotenttest"
	"github.com/idemkit/idemkit/internal/ddblocal/ddbtest"
	"github.com/idemkit/idemkit/internal/testwait"
)

// The scope and requests of the conformance package's engine-level cases, under the names this package's tests use.
var (
	scope   = idempotenttest.Scope
	request = idempotenttest.Request
)

// resp is this package's own response type (the merged tests write it unkeyed); it is JSON-compatible with
// idempotenttest.Resp, so a record the shared cases wrote replays into it.
type resp struct {
	Status int    `json:"status"`
	Body   string `json:"body"`
}

// handler returns a handler that counts its executions.
func handler(n *atomic.Int32, body string) func(context.Context) (resp, error) {
	return func(context.Context) (resp, error) {
		n.Add(1)
		return resp{Status: 201, Body: body}, nil
	}
}

// stripItem removes the old item from ConditionalCheckFailedException, as DynamoDB may, to force the GetItem
// fallback.
type stripItem struct{ *dynamodb.Client }

func (c stripItem) PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	out, err := c.Client.PutItem(ctx, in, optFns...)
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		ccf.Item = nil
	}
	return out, err
}

func TestEngineRoundTrips(t *testing.T) {
	table := newTable(t)
	client, calls := countingClient(t)
	engine := idempotent.New(dynamostore.New(client, table))
	// A duplicate's failed claim carries the record (ALL_OLD): one call.
	idempotenttest.RunRoundTrips(t, engine, calls.take, idempotenttest.RoundTrips{
		First:        map[string]int{"PutItem": 2},
		Duplicate:    map[string]int{"PutItem": 1},
		Mismatch:     map[string]int{"PutItem": 1},
		InProgress:   map[string]int{"PutItem": 1},
		Completion:   map[string]int{"PutItem": 1},
		HandlerError: map[string]int{"PutItem": 1, "DeleteItem": 1},
	}, func(t *testing.T, id string) {
		assert.Nil(t, rawGet(t, table, idKey(id)), "released")
	})

	// GetItem fallback when the error lacks the item: two calls for a duplicate.
	ctx := context.Background()
	var runs atomic.Int32
	calls.take()
	fallback := idempotent.New(dynamostore.New(stripItem{client}, table))
	res, err := idempotent.Run(ctx, fallback, request("k-1", `{"a":1}`), idempotent.Spec[resp]{}, handler(&runs, "again"))
	require.NoError(t, err)
	assert.True(t, res.Replayed())
	assert.Equal(t, resp{201, "paid"}, res.Value)
	assert.Equal(t, map[string]int{"PutItem": 1, "GetItem": 1}, calls.take(), "duplicate with GetItem fallback")
	assert.Zero(t, runs.Load())
}

// TestLocalCacheMakesNoCalls completes the round-trip counts of TestEngineRoundTrips: with the local cache, a
// duplicate that lands on the instance that recorded the response (or a mismatch) costs no DynamoDB call.
func TestLocalCacheMakesNoCalls(t *testing.T) {
	client, calls := countingClient(t)
	engine := idempotent.New(dynamostore.New(client, newTable(t)), idempotent.WithLocalCache(16, time.Minute))
	idempotenttest.RunLocalCacheMakesNoCalls(t, engine, calls.take, map[string]int{"PutItem": 2})
}

func TestExpiredRecordIsReclaimed(t *testing.T) {
	table := newTable(t)
	store := dynamostore.New(ddbtest.Client(t), table)
	// Whole seconds: the expiration is stored in epoch seconds.
	idempotenttest.RunExpiredRecordIsReclaimed(t, store, "expiring", time.Now().Truncate(time.Second), time.Second,
		func(t *testing.T, id string) {
			// DynamoDB Local never deletes expired items: the record is present and must count as absent.
			require.NotNil(t, rawGet(t, table, idKey(id)))
		})
}

func TestEndedLease(t *testing.T) {
	table := newTable(t)
	store := dynamostore.New(ddbtest.Client(t), table)
	// Whole milliseconds: the lease is stored in milliseconds, rounded up.
	idempotenttest.RunEndedLease(t, store, time.Now().Truncate(time.Millisecond), time.Millisecond, func(t *testing.T, id string) any {
		return rawGet(t, table, idKey(id))
	})
}

func TestStoredAttributes(t *testing.T) {
	table := newTable(t)
	store := dynamostore.New(ddbtest.Client(t), table)
	engine := idempotent.New(store, idempotent.WithLease(45*time.Second))
	ctx := context.Background()
	const rawKey = "raw-client-key-4a1f"
	id := scope.ID(rawKey)
	require.Regexp(t, regexp.MustCompile(`^[0-9a-f]{64}$`), id)

	var inProgress map[string]types.AttributeValue
	before := time.Now()
	_, err := idempotent.Run(ctx, engine, request(rawKey, `{"amount":1}`), idempotent.Spec[resp]{}, func(context.Context) (resp, error) {
		inProgress = rawGet(t, table, idKey(id))
		return resp{Status: 201, Body: "ok"}, nil
	})
	require.NoError(t, err)
	after := time.Now()

	require.NotNil(t, inProgress)
	assert.Equal(t, &types.AttributeValueMemberS{Value: id}, inProgress["id"])
	assert.Equal(t, &types.AttributeValueMemberS{Value: "INPROGRESS"}, inProgress["status"])
	lease := number(t, inProgress["in_progress_expiration"])
	assert.GreaterOrEqual(t, lease, before.Add(45*time.Second).UnixMilli(), "lease in epoch milliseconds")
	assert.LessOrEqual(t, lease, after.Add(45*time.Second).UnixMilli()+1)
	assertNoRawKey(t, inProgress, rawKey)

	done := rawGet(t, table, idKey(id))
	assert.Equal(t, &types.AttributeValueMemberS{Value: "COMPLETED"}, done["status"])
	exp := number(t, done["expiration"])
	assert.GreaterOrEqual(t, exp, before.Add(24*time.Hour).Unix(), "expiration in epoch seconds")
	assert.LessOrEqual(t, exp, after.Add(24*time.Hour).Unix()+1)
	assert.NotContains(t, done, "in_progress_expiration")
	assert.Equal(t, &types.AttributeValueMemberS{Value: request(rawKey, `{"amount":1}`).Fingerprint}, done["validation"])
	assert.Equal(t, inProgress["owner"], done["owner"], "the owner stays on the completed record")
	assert.IsType(t, &types.AttributeValueMemberS{}, done["owner"])
	assert.JSONEq(t, `{"status":201,"body":"ok"}`, done["data"].(*types.AttributeValueMemberS).Value)
	assert.NotContains(t, done, "data_encoding")
	assertNoRawKey(t, done, rawKey)
}

func number(t *testing.T, av types.AttributeValue) int64 {
	t.Helper()
	n, ok := av.(*types.AttributeValueMemberN)
	require.True(t, ok, "want N, got %T", av)
	v, err := strconv.ParseInt(n.Value, 10, 64)
	require.NoError(t, err)
	return v
}

func assertNoRawKey(t *testing.T, item map[string]types.AttributeValue, rawKey string) {
	t.Helper()
	for name, av := range item {
		assert.NotContains(t, fmt.Sprint(av), rawKey, "attribute %s holds the raw key", name)
		assert.NotContains(t, name, rawKey)
	}
}

func TestConcurrentBursts(t *testing.T) {
	table := newTable(t)
	engine := idempotent.New(dynamostore.New(ddbtest.Client(t), table))
	const bursts, perBurst = 10, 50
	for b := range bursts {
		key := fmt.Sprintf("burst-%d", b)
		var runs, replayed, inProgress atomic.Int32
		var wg sync.WaitGroup
		errs := make(chan error, perBurst)
		start := make(chan struct{})
		for range perBurst {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				res, err := idempotent.Run(context.Background(), engine, request(key, `{"n":1}`), idempotent.Spec[resp]{},
					func(context.Context) (resp, error) {
						runs.Add(1)
						time.Sleep(20 * time.Millisecond)
						return resp{Status: 201, Body: key}, nil
					})
				switch {
				case errors.Is(err, idempotent.ErrInProgress):
					inProgress.Add(1)
				case err != nil:
					errs <- err
				case res.Replayed():
					replayed.Add(1)
					if res.Value.Body != key {
						errs <- fmt.Errorf("replayed %q", res.Value.Body)
					}
				}
			}()
		}
		close(start)
		testwait.Group(t, &wg, "the concurrent duplicates")
		close(errs)
		for err := range errs {
			t.Errorf("burst %d: %v", b, err)
		}
		assert.Equal(t, int32(1), runs.Load(), "burst %d: executions", b)
		assert.Equal(t, int32(perBurst-1), replayed.Load()+inProgress.Load(), "burst %d: replays + in progress", b)
	}
}

func TestAtomicCompletion(t *testing.T) {
	table := newTable(t)
	orders := newTable(t) // any table; its partition key is "id"
	client, calls := countingClient(t)
	engine := idempotent.New(dynamostore.New(client, table))
	ctx := context.Background()
	var runs atomic.Int32
	placeOrder := func(orderID string) func(context.Context) (resp, error) {
		return func(ctx context.Context) (resp, error) {
			runs.Add(1)
			added := dynamostore.Put(ctx, &types.Put{
				TableName: &orders,
				Item: map[string]types.AttributeValue{
					"id":     &types.AttributeValueMemberS{Value: orderID},
					"amount": &types.AttributeValueMemberN{Value: "2000"},
				},
				ConditionExpression: strPtr("attribute_not_exists(id)"),
			})
			if !added {
				return resp{}, errors.New("not in an idempotent execution")
			}
			return resp{Status: 201, Body: orderID}, nil
		}
	}

	t.Run("CommitsBoth", func(t *testing.T) {
		calls.take()
		_, err := idempotent.Run(ctx, engine, request("order-1", `{}`), idempotent.Spec[resp]{}, placeOrder("ord_1"))
		require.NoError(t, err)
		assert.Equal(t, map[string]int{"PutItem": 1, "TransactWriteItems": 1}, calls.take())
		assert.NotNil(t, rawGet(t, orders, idKey("ord_1")), "effect committed")
		rec := rawGet(t, table, idKey(scope.ID("order-1")))
		assert.Equal(t, &types.AttributeValueMemberS{Value: "COMPLETED"}, rec["status"])
	})

	t.Run("FailedEffectCommitsNothing", func(t *testing.T) {
		// An order with this ID exists already, so the handler's conditional Put fails.
		_, err := ddbtest.Client(t).PutItem(ctx, &dynamodb.PutItemInput{TableName: &orders, Item: map[string]types.AttributeValue{
			"id": &types.AttributeValueMemberS{Value: "ord_2"}, "amount": &types.AttributeValueMemberN{Value: "1"},
		}})
		require.NoError(t, err)
		runs.Store(0)
		calls.take()
		_, err = idempotent.Run(ctx, engine, request("order-2", `{}`), idempotent.Spec[resp]{}, placeOrder("ord_2"))
		require.ErrorIs(t, err, idempotent.ErrEffectFailed)
		assert.Contains(t, err.Error(), "effect 0 (Put on table "+orders+")")
		assert.Contains(t, err.Error(), "ConditionalCheckFailed")
		assert.Equal(t, map[string]int{"PutItem": 1, "TransactWriteItems": 1, "DeleteItem": 1}, calls.take())
		assert.Nil(t, rawGet(t, table, idKey(scope.ID("order-2"))), "no record: the key is released")
		assert.Equal(t, "1", rawGet(t, orders, idKey("ord_2"))["amount"].(*types.AttributeValueMemberN).Value, "order untouched")

		// The blocking item goes away; a retry with the same key runs the handler again and commits.
		_, err = ddbtest.Client(t).DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &orders, Key: idKey("ord_2")})
		require.NoError(t, err)
		res, err := idempotent.Run(ctx, engine, request("order-2", `{}`), idempotent.Spec[resp]{}, placeOrder("ord_2"))
		require.NoError(t, err)
		assert.False(t, res.Replayed())
		assert.Equal(t, int32(2), runs.Load())
		assert.Equal(t, "2000", rawGet(t, orders, idKey("ord_2"))["amount"].(*types.AttributeValueMemberN).Value)
	})

	t.Run("UnsupportedEffectWritesNothing", func(t *testing.T) {
		_, err := idempotent.Run(ctx, engine, request("order-3", `{}`), idempotent.Spec[resp]{}, func(ctx context.Context) (resp, error) {
			idempotent.AddEffect(ctx, dynamodb.PutItemInput{TableName: &orders})
			return resp{Status: 201}, nil
		})
		require.ErrorIs(t, err, idempotent.ErrUnsupportedEffect)
		assert.Nil(t, rawGet(t, table, idKey(scope.ID("order-3"))), "released")
	})
}

func strPtr(s string) *string { return &s }

func TestLargeResponses(t *testing.T) {
	table := newTable(t)
	client, calls := countingClient(t)
	// The completion of a 600 KB response (gzip, then the too-large marker) must not race a fixed budget on a
	// loaded machine: the budget is the test's own bound.
	engine := idempotent.New(dynamostore.New(client, table), idempotent.WithCompletionTimeout(testwait.Bound(t)))
	ctx := context.Background()
	var runs atomic.Int32

	t.Run("CompressedRoundTrip", func(t *testing.T) {
		body := strings.Repeat(`{"line":"a fairly repetitive JSON document"},`, 20000) // ~900 KB, compresses well
		res, err := idempotent.Run(ctx, engine, request("big-json", `{}`), idempotent.Spec[resp]{}, handler(&runs, body))
		require.NoError(t, err)
		require.Equal(t, body, res.Value.Body)
		item := rawGet(t, table, idKey(scope.ID("big-json")))
		assert.Equal(t, &types.AttributeValueMemberS{Value: dynamostore.EncodingGzip}, item["data_encoding"])
		require.IsType(t, &types.AttributeValueMemberB{}, item["data"])
		assert.Less(t, len(item["data"].(*types.AttributeValueMemberB).Value), 64<<10)

		res, err = idempotent.Run(ctx, engine, request("big-json", `{}`), idempotent.Spec[resp]{}, handler(&runs, "other"))
		require.NoError(t, err)
		assert.True(t, res.Replayed())
		assert.Equal(t, body, res.Value.Body, "replayed byte for byte")
	})

	t.Run("TooLargeNeverRunsTwice", func(t *testing.T) {
		big := make([]byte, 600<<10) // random: gzip cannot bring it (base64 in JSON) under 400 KB
		_, _ = rand.Read(big)
		calls.take()
		idempotenttest.RunTooLargeNeverRunsTwice(t, engine, big, dynamostore.ErrResponseTooLarge, func(t *testing.T, id string) {
			assert.Equal(t, map[string]int{"PutItem": 2}, calls.take())
			item := rawGet(t, table, idKey(id))
			assert.Equal(t, &types.AttributeValueMemberS{Value: "COMPLETED"}, item["status"])
			assert.Equal(t, &types.AttributeValueMemberS{Value: dynamostore.EncodingTooLarge}, item["data_encoding"])
			assert.NotContains(t, item, "data")
		})
	})
}

// A completion retried after its transaction committed (the answer was lost) succeeds and writes nothing twice.
func TestCommittedTransactionRetry(t *testing.T) {
	table := newTable(t)
	counters := newTable(t)
	store := dynamostore.New(ddbtest.Client(t), table)
	ctx := context.Background()
	now := time.Now()
	rec := idempotent.Record{
		ID: scope.ID("tx-retry"), Status: idempotent.StatusInProgress, Fingerprint: "fp", Owner: rand.Text(),
		LeaseEnd: now.Add(time.Minute), ExpiresAt: now.Add(time.Hour),
	}
	existing, err := store.Claim(ctx, idempotent.Claim{Record: rec, Now: now})
	require.NoError(t, err)
	require.Nil(t, existing)
	done := rec
	done.Status, done.Response = idempotent.StatusCompleted, []byte(`"ok"`)
	effect := &types.TransactWriteItem{Update: &types.Update{
		TableName:                 &counters,
		Key:                       idKey("c"),
		UpdateExpression:          strPtr("ADD n :one"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":one": &types.AttributeValueMemberN{Value: "1"}},
	}}
	require.NoError(t, store.Complete(ctx, done, []idempotent.Effect{effect}))
	require.NoError(t, store.Complete(ctx, done, []idempotent.Effect{effect}), "a retry of the committed completion")
	assert.Equal(t, "1", rawGet(t, counters, idKey("c"))["n"].(*types.AttributeValueMemberN).Value, "the effect applied once")

	other := done
	other.Owner = "someone-else"
	require.ErrorIs(t, store.Complete(ctx, other, []idempotent.Effect{effect}), idempotent.ErrFenced)
	assert.Equal(t, "1", rawGet(t, counters, idKey("c"))["n"].(*types.AttributeValueMemberN).Value)
}
