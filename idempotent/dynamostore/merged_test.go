package dynamostore_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/dynamostore"
	"github.com/idemkit/idemkit/idempotent/idempotenttest"
	"github.com/idemkit/idemkit/internal/ddblocal/ddbtest"
	"github.com/idemkit/idemkit/internal/faultinject"
)

// mergedRig is a function in merged mode (Spec.MergeClaim) whose only side effect is an order item handed to the
// engine, as the example user service's registration. The order's ID derives from the record ID; the order names
// the run that built it, so a test can tell which run committed.
type mergedRig struct {
	client *dynamodb.Client
	table  string
	orders string
	engine *idempotent.Engine
	runs   atomic.Int32
	// direct counts runs whose AddEffect refused (after the effects failed): the handler then wrote itself.
	direct atomic.Int32
}

func newMergedRig(t *testing.T, client *dynamodb.Client, opts ...idempotent.Option) *mergedRig {
	t.Helper()
	return newMergedRigOn(t, newTable(t), client, opts...)
}

// newMergedRigOn is newMergedRig on an existing idempotency table, with the store on api (the handler's own
// writes go to DynamoDB Local directly).
func newMergedRigOn(t *testing.T, table string, api dynamostore.API, opts ...idempotent.Option) *mergedRig {
	t.Helper()
	r := &mergedRig{client: ddbtest.Client(t), table: table, orders: ddbtest.Table(t, ddbtest.Client(t), "orders")}
	if c, ok := api.(*dynamodb.Client); ok {
		r.client = c
	}
	r.engine = idempotent.New(dynamostore.New(api, table), opts...)
	return r
}

func (r *mergedRig) orderID(key string) string { return "ord_" + request(key, "").Scope.ID(key)[:24] }

// run sends a request in merged mode; orderID, when not empty, replaces the derived one (to meet an order of
// another key).
func (r *mergedRig) run(ctx context.Context, key, body, orderID string) (idempotent.Result[resp], error) {
	return idempotent.Run(ctx, r.engine, request(key, body), idempotent.Spec[resp]{MergeClaim: true},
		func(ctx context.Context) (resp, error) {
			n := r.runs.Add(1)
			inv, ok := idempotent.FromContext(ctx)
			if !ok {
				return resp{}, errors.New("not in an idempotent execution")
			}
			id := orderID
			if id == "" {
				id = "ord_" + inv.ID[:24]
			}
			put := &types.Put{
				TableName: aws.String(r.orders),
				Item: map[string]types.AttributeValue{
					"id":  &types.AttributeValueMemberS{Value: id},
					"run": &types.AttributeValueMemberN{Value: fmt.Sprint(n)},
				},
				ConditionExpression: aws.String("attribute_not_exists(id)"),
			}
			if dynamostore.Put(ctx, put) {
				return resp{Status: 201, Body: fmt.Sprintf("run %d", n)}, nil
			}
			// The effects failed: write directly and answer the conflict, as without a key.
			r.direct.Add(1)
			_, err := r.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: put.TableName, Item: put.Item, ConditionExpression: put.ConditionExpression})
			var ccf *types.ConditionalCheckFailedException
			if errors.As(err, &ccf) {
				return resp{Status: 409, Body: "order exists"}, nil
			}
			return resp{Status: 201, Body: "direct"}, err
		})
}

// orderRun returns the run that wrote order id, 0 when there is no such order.
func (r *mergedRig) orderRun(t *testing.T, id string) string {
	t.Helper()
	it := rawGet(t, r.orders, idKey(id))
	if it == nil {
		return ""
	}
	return it["run"].(*types.AttributeValueMemberN).Value
}

func TestMergedRoundTrips(t *testing.T) {
	client, calls := countingClient(t)
	r := newMergedRig(t, client)
	ctx := context.Background()

	res, err := r.run(ctx, "k-1", `{"a":1}`, "")
	require.NoError(t, err)
	assert.Equal(t, resp{201, "run 1"}, res.Value)
	assert.Equal(t, map[string]int{"TransactWriteItems": 1}, calls.take(), "first request: one call")
	assert.Equal(t, "1", r.orderRun(t, r.orderID("k-1")), "the effect committed with the record")

	res, err = r.run(ctx, "k-1", `{ "a": 1 }`, "")
	require.NoError(t, err)
	assert.True(t, res.Replayed())
	assert.Equal(t, resp{201, "run 1"}, res.Value, "the winner's answer, read from the cancellation reason")
	assert.Equal(t, map[string]int{"TransactWriteItems": 1}, calls.take(), "duplicate: one call")

	_, err = r.run(ctx, "k-1", `{"a":2}`, "")
	require.ErrorIs(t, err, idempotent.ErrPayloadMismatch)
	assert.Equal(t, map[string]int{"TransactWriteItems": 1}, calls.take(), "mismatch: one call")
	assert.Equal(t, "1", r.orderRun(t, r.orderID("k-1")), "no later run wrote anything")

	// Without effects the merged write is one PutItem.
	_, err = idempotent.Run(ctx, r.engine, request("k-2", `{}`), idempotent.Spec[resp]{MergeClaim: true},
		func(context.Context) (resp, error) { return resp{Status: 200}, nil })
	require.NoError(t, err)
	assert.Equal(t, map[string]int{"PutItem": 1}, calls.take(), "first request without effects")
	res, err = idempotent.Run(ctx, r.engine, request("k-2", `{}`), idempotent.Spec[resp]{MergeClaim: true},
		func(context.Context) (resp, error) { return resp{Status: 500}, nil })
	require.NoError(t, err)
	assert.Equal(t, resp{Status: 200}, res.Value)
	assert.Equal(t, map[string]int{"PutItem": 1}, calls.take(), "duplicate without effects")
}

func TestMergedEffectFailure(t *testing.T) {
	client, calls := countingClient(t)
	r := newMergedRig(t, client)
	ctx := context.Background()
	_, err := r.run(ctx, "taken", `{}`, "")
	require.NoError(t, err)
	calls.take()

	// Another key whose effect meets the first one's order: nothing of this request is written, and the handler
	// answers the conflict on its own path.
	res, err := r.run(ctx, "k-3", `{}`, r.orderID("taken"))
	require.NoError(t, err)
	assert.Equal(t, resp{409, "order exists"}, res.Value)
	assert.False(t, res.Replayed())
	assert.Equal(t, int32(1), r.direct.Load())
	assert.Equal(t, map[string]int{"TransactWriteItems": 1, "PutItem": 1}, calls.take(), "the failed transaction, then the handler's own write")
	assert.Nil(t, rawGet(t, r.table, idKey(request("k-3", "").Scope.ID("k-3"))), "the conflict is not recorded")
	assert.Equal(t, "1", r.orderRun(t, r.orderID("taken")))

	// When the record is live, its answer wins over a failing effect.
	res, err = r.run(ctx, "taken", `{}`, r.orderID("taken"))
	require.NoError(t, err)
	assert.True(t, res.Replayed())
	assert.Equal(t, map[string]int{"TransactWriteItems": 1}, calls.take())
}

// TestMergedConcurrentRequests: 64 concurrent first requests with one key in merged mode commit one order, record
// one answer, and all get it.
func TestMergedConcurrentRequests(t *testing.T) {
	const n = 64
	r := newMergedRig(t, ddbtest.Client(t), idempotent.WithWait(idempotent.DefaultWait))
	var wg sync.WaitGroup
	start := make(chan struct{})
	answers := make([]resp, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			res, err := r.run(context.Background(), "race", `{"a":1}`, "")
			answers[i], errs[i] = res.Value, err
		}()
	}
	close(start)
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i], "request %d", i)
		assert.Equal(t, answers[0], answers[i], "request %d gets the one answer", i)
	}
	winner := r.orderRun(t, r.orderID("race"))
	assert.Equal(t, fmt.Sprintf("run %s", winner), answers[0].Body, "the answer is that of the run whose order committed")
	rec := rawGet(t, r.table, idKey(request("race", "").Scope.ID("race")))
	require.NotNil(t, rec)
	assert.Equal(t, "COMPLETED", rec["status"].(*types.AttributeValueMemberS).Value)
	assert.Zero(t, r.direct.Load(), "no effect failed")
	t.Logf("%d concurrent requests: the handler ran %d times, one order", n, r.runs.Load())
}

// TestMergedFaults injects DynamoDB faults into the merged transaction: a fault never leaves an effect without its
// record nor a record without its effect, the answer says what happened, and a retry with faults cleared ends with
// exactly one order.
func TestMergedFaults(t *testing.T) {
	tx := faultinject.PhaseAtomicComplete
	tests := []struct {
		name     string
		rule     faultinject.Rule
		status   int // the first answer's status; 0: a store error
		recorded bool
		gets     int // consistent reads after the transaction failed
	}{
		{"throttle", faultRule(tx, faultinject.Throttle, faultinject.Always()), 0, false, 1},
		{"server error", faultRule(tx, faultinject.ServerError, faultinject.Always()), 0, false, 1},
		{"connection reset", faultRule(tx, faultinject.ConnReset, faultinject.Always()), 0, false, 1},
		{"response lost once", faultRule(tx, faultinject.ResponseLost, faultinject.Nth(1)), 201, true, 0},
		{"response always lost", faultRule(tx, faultinject.ResponseLost, faultinject.Always()), 201, true, 1},
		{"transient then fine", faultRule(tx, faultinject.Throttle, faultinject.First(2)), 201, true, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			table := newTable(t)
			inj := faultinject.New(func(o *faultinject.Options) { o.IdempotencyTable = table })
			r := newMergedRigOn(t, table, faultClient(t, inj))
			inj.Add(tc.rule)

			res, err := r.run(context.Background(), "k", `{}`, "")
			if tc.status == 0 {
				var se *idempotent.StoreError
				require.ErrorAs(t, err, &se)
				assert.Nil(t, rawGet(t, r.table, idKey(request("k", "").Scope.ID("k"))), "nothing recorded")
				assert.Empty(t, r.orderRun(t, r.orderID("k")), "nor any effect")
			} else {
				require.NoError(t, err)
				assert.Equal(t, tc.status, res.Value.Status)
				assert.Equal(t, "1", r.orderRun(t, r.orderID("k")))
			}
			assert.Equal(t, tc.gets, inj.Count("GetItem", faultinject.PhaseRead), "reads to settle the outcome")

			inj.Clear()
			again, err := r.run(context.Background(), "k", `{}`, "")
			require.NoError(t, err)
			assert.Equal(t, tc.recorded, again.Replayed(), "a recorded answer is replayed, else the request runs")
			assert.NotEmpty(t, r.orderRun(t, r.orderID("k")), "one order in the end")
			if tc.recorded {
				assert.Equal(t, res.Value, again.Value)
			}
		})
	}
}

// beforeGet runs fn once before the first GetItem: a holder finishing while a request waits.
type beforeGet struct {
	*dynamodb.Client
	once sync.Once
	fn   func()
}

func (c *beforeGet) GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	c.once.Do(c.fn)
	return c.Client.GetItem(ctx, in, optFns...)
}

// TestMergedWaitsForAClaim: a merged request that meets a running claim-first request waits for its answer and
// replays it; its own effect is not written.
func TestMergedWaitsForAClaim(t *testing.T) {
	client, calls := countingClient(t)
	clock := idempotenttest.NewClock(time.Now().Truncate(time.Millisecond))
	table := newTable(t)
	store := dynamostore.New(client, table)
	held := idempotent.Record{ID: request("k", "").Scope.ID("k"), Status: idempotent.StatusInProgress,
		Fingerprint: request("k", `{}`).Fingerprint, Owner: "holder", LeaseEnd: clock.Now().Add(time.Minute),
		ExpiresAt: clock.Now().Add(time.Hour)}
	existing, err := store.Claim(context.Background(), idempotent.Claim{Record: held, Now: clock.Now(), Takeover: true})
	require.NoError(t, err)
	require.Nil(t, existing)
	done := held
	done.Status, done.Response = idempotent.StatusCompleted, []byte(`{"status":201,"body":"holder"}`)
	hooked := &beforeGet{Client: client, fn: func() { require.NoError(t, store.Complete(context.Background(), done, nil)) }}
	r := newMergedRigOn(t, table, hooked, idempotent.WithClock(clock), idempotent.WithWait(idempotent.DefaultWait))
	calls.take()

	res, err := r.run(context.Background(), "k", `{}`, "")
	require.NoError(t, err)
	assert.True(t, res.Replayed())
	assert.Equal(t, resp{201, "holder"}, res.Value)
	assert.Equal(t, map[string]int{"TransactWriteItems": 1, "PutItem": 1, "GetItem": 1}, calls.take(),
		"the merged write, the holder's completion, one read of the wait")
	assert.Empty(t, r.orderRun(t, r.orderID("k")), "the waiting request's effect is not written")
}

// TestWaitFaults injects DynamoDB faults into the reads of a wait: a read the SDK's retries get through still
// ends in the holder's answer, one they do not ends the wait with a store error (503), never a 409 that would hide
// the fault, and nothing runs either way.
func TestWaitFaults(t *testing.T) {
	read := faultinject.PhaseRead
	tests := []struct {
		name     string
		rule     faultinject.Rule
		replayed bool
		wire     int // GetItem requests on the wire, SDK retries included
	}{
		{"throttled once", faultRule(read, faultinject.Throttle, faultinject.Nth(1)), true, 2},
		{"throttled always", faultRule(read, faultinject.Throttle, faultinject.Always()), false, faultSDKAttempts},
		{"server error always", faultRule(read, faultinject.ServerError, faultinject.Always()), false, faultSDKAttempts},
		{"response lost always", faultRule(read, faultinject.ResponseLost, faultinject.Always()), false, faultSDKAttempts},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			table := newTable(t)
			inj := faultinject.New(func(o *faultinject.Options) { o.IdempotencyTable = table })
			client := faultClient(t, inj)
			store := dynamostore.New(client, table)
			clock := idempotenttest.NewClock(time.Now().Truncate(time.Millisecond))
			req := request("k", `{}`)
			held := idempotent.Record{ID: req.Scope.ID("k"), Status: idempotent.StatusInProgress, Fingerprint: req.Fingerprint,
				Owner: "holder", LeaseEnd: clock.Now().Add(time.Minute), ExpiresAt: clock.Now().Add(time.Hour)}
			existing, err := store.Claim(context.Background(), idempotent.Claim{Record: held, Now: clock.Now(), Takeover: true})
			require.NoError(t, err)
			require.Nil(t, existing)
			done := held
			done.Status, done.Response = idempotent.StatusCompleted, []byte(`{"status":201,"body":"holder"}`)
			hooked := &beforeGet{Client: client, fn: func() { require.NoError(t, store.Complete(context.Background(), done, nil)) }}
			engine := idempotent.New(dynamostore.New(hooked, table), idempotent.WithClock(clock),
				idempotent.WithWait(idempotent.DefaultWait), idempotent.WithLogger(idempotent.NewLogger(io.Discard)))
			inj.Reset()
			inj.Add(tc.rule)

			ran := false
			res, err := idempotent.Run(context.Background(), engine, req, idempotent.Spec[resp]{}, func(context.Context) (resp, error) {
				ran = true
				return resp{Status: 201, Body: "second run"}, nil
			})
			assert.False(t, ran, "nothing runs while the key is held")
			assert.Equal(t, tc.wire, inj.Count("GetItem", read), "reads on the wire")
			if tc.replayed {
				require.NoError(t, err)
				assert.True(t, res.Replayed())
				assert.Equal(t, resp{201, "holder"}, res.Value)
				return
			}
			var se *idempotent.StoreError
			require.ErrorAs(t, err, &se)
			assert.Equal(t, "get", se.Op)
			assert.NotErrorIs(t, err, idempotent.ErrInProgress)
		})
	}
}
