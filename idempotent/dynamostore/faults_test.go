package dynamostore_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/apigw"
	"github.com/idemkit/idemkit/idempotent/dynamostore"
	"github.com/idemkit/idemkit/idempotent/idempotenttest"
	"github.com/idemkit/idemkit/internal/ddblocal/ddbtest"
	"github.com/idemkit/idemkit/internal/faultinject"
)

// The fault tests run the real engine, dynamostore and the REST adapter on DynamoDB Local, with DynamoDB faults
// injected at the SDK's HTTP client by idempotency phase. Time is the engine's injected clock: a lease "ends"
// when the test advances it. Real time is spent only where the engine itself measures it: the completion budget
// and the claim timeout's context deadline.

const (
	faultLease       = 30 * time.Second
	faultSDKAttempts = 3
	// faultCompletionBudget bounds completion (and release) retries in the scenarios whose fault outlasts them.
	// The others keep the engine's default (5 s), so a DynamoDB Local slowed down by a busy machine cannot make
	// a completion that should succeed run out of time.
	faultCompletionBudget = time.Second
)

// faultClient is a DynamoDB Local client whose requests go through inj, with the SDK's retry policy made
// explicit: its default 3 attempts, without the waits between them (faultinject.Retryer).
func faultClient(t *testing.T, inj *faultinject.Injector) *dynamodb.Client {
	t.Helper()
	return dynamodb.New(ddbtest.Client(t).Options(), func(o *dynamodb.Options) {
		o.HTTPClient = inj.Client(nil)
		o.Retryer = faultinject.Retryer(faultSDKAttempts)
	})
}

// faultLog is a concurrency-safe buffer of JSON lines (slog output or EMF documents).
type faultLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *faultLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// take returns the JSON objects written so far and forgets them.
func (l *faultLog) take(t *testing.T) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(&l.buf)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m), "log line %s", sc.Bytes())
		out = append(out, m)
	}
	l.buf.Reset()
	return out
}

// handlerKind is the business side of a scenario.
type handlerKind uint8

const (
	// plain writes its order item itself (PutItem, conditional on the order not existing: the order ID derives
	// from the idempotency record ID) and returns 201. Its write is not atomic with the completion.
	plain handlerKind = iota
	// atomicEffect hands its order item to the engine (dynamostore.Put), to commit in the completion transaction: the
	// payment handler's pattern.
	atomicEffect
	// failOnce answers 500 on its first execution (not recorded, so the engine releases the key) and behaves like
	// plain after that.
	failOnce
)

// faultRig is one scenario's function, wired like the example functions: apigw.REST over the engine over
// dynamostore, every DynamoDB call through one injector. It has two instances sharing the injector, the clock and
// the logs: first, with the scenario's completion budget, and retry, with the engine's default of 5 s, so a
// retry is never cut short by a DynamoDB Local that a busy machine slows down.
type faultRig struct {
	inj          *faultinject.Injector
	client       *dynamodb.Client
	clock        *idempotenttest.Clock
	first, retry func(context.Context, events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error)
	logs         faultLog
	metrics      faultLog

	mu     sync.Mutex
	events []idempotent.Event

	runs    atomic.Int32 // handler executions
	written atomic.Int32 // order writes the plain handler's PutItem applied
	orders  string
}

func newFaultRig(t *testing.T, table, orders string, kind handlerKind, policy idempotent.LeasePolicy, budget time.Duration) *faultRig {
	t.Helper()
	r := &faultRig{
		inj: faultinject.New(func(o *faultinject.Options) { o.IdempotencyTable = table }),
		// Whole milliseconds: the lease is stored in milliseconds, rounded up, and Retry-After counts from it.
		clock:  idempotenttest.NewClock(time.Now().Truncate(time.Millisecond)),
		orders: orders,
	}
	r.client = faultClient(t, r.inj)
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		for i, ev := range r.events {
			t.Logf("request %d: outcome %s, error %v, store error %v, took %s", i+1, ev.Outcome, ev.Err, ev.StoreErr, ev.Duration)
		}
	})
	logger := slog.New(slog.NewJSONHandler(&r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	handler := func(ctx context.Context, _ events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
		n := r.runs.Add(1)
		inv, ok := idempotent.FromContext(ctx)
		if !ok {
			return events.APIGatewayProxyResponse{StatusCode: http.StatusInternalServerError}, nil
		}
		orderID := "ord_" + inv.ID[:24]
		created := events.APIGatewayProxyResponse{StatusCode: http.StatusCreated, Body: `{"id":"` + orderID + `"}`,
			Headers: map[string]string{"Content-Type": "application/json"}}
		item := map[string]types.AttributeValue{
			"id":     &types.AttributeValueMemberS{Value: orderID},
			"scope":  &types.AttributeValueMemberS{Value: inv.ID},
			"amount": &types.AttributeValueMemberN{Value: "2000"},
		}
		switch kind {
		case atomicEffect:
			if !dynamostore.Put(ctx, &types.Put{TableName: aws.String(orders), Item: item, ConditionExpression: aws.String("attribute_not_exists(id)")}) {
				return events.APIGatewayProxyResponse{StatusCode: http.StatusInternalServerError}, nil
			}
			return created, nil
		case failOnce:
			if n == 1 {
				return events.APIGatewayProxyResponse{StatusCode: http.StatusInternalServerError, Body: `{"message":"try again"}`}, nil
			}
		}
		_, err := r.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(orders), Item: item,
			ConditionExpression: aws.String("attribute_not_exists(id)")})
		var ccf *types.ConditionalCheckFailedException
		switch {
		case err == nil:
			r.written.Add(1)
		case errors.As(err, &ccf):
			// The order exists: an earlier execution of this very request wrote it.
		default:
			return events.APIGatewayProxyResponse{StatusCode: http.StatusServiceUnavailable}, nil
		}
		return created, nil
	}
	instance := func(budget time.Duration) func(context.Context, events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
		engine := idempotent.New(dynamostore.New(r.client, table, func(o *dynamostore.Options) { o.Logger = logger }),
			idempotent.WithClock(r.clock),
			idempotent.WithLease(faultLease),
			idempotent.WithLeasePolicy(policy),
			idempotent.WithCompletionTimeout(budget), // zero keeps the default
			idempotent.WithLogger(logger),
			idempotent.WithMetrics(&r.metrics, "idemkit-test", "faults"),
			idempotent.WithOutcomeHook(func(_ context.Context, ev idempotent.Event) {
				r.mu.Lock()
				defer r.mu.Unlock()
				r.events = append(r.events, ev)
			}),
		)
		return apigw.REST(engine, handler)
	}
	r.first, r.retry = instance(budget), instance(0)
	return r
}

// faultKey is a valid idempotency key unique to the test.
func faultKey(t *testing.T) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, t.Name())
}

func orderRequest(key string) events.APIGatewayProxyRequest {
	return events.APIGatewayProxyRequest{
		HTTPMethod: http.MethodPost, Resource: "/orders", Path: "/orders",
		Headers: map[string]string{"Idempotency-Key": key, "Content-Type": "application/json"},
		Body:    `{"amount":2000}`,
	}
}

// send sends the request with key to instance (r.first or r.retry).
func send(t *testing.T, ctx context.Context, instance func(context.Context, events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error), key string) events.APIGatewayProxyResponse {
	t.Helper()
	resp, err := instance(ctx, orderRequest(key))
	require.NoError(t, err)
	return resp
}

func (r *faultRig) lastEvent(t *testing.T) idempotent.Event {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	require.NotEmpty(t, r.events)
	return r.events[len(r.events)-1]
}

// orderItems scans the orders table for the items of one idempotency record: never more than one.
func orderItems(t *testing.T, table, scopeID string) int {
	t.Helper()
	n := 0
	p := dynamodb.NewScanPaginator(ddbtest.Client(t), &dynamodb.ScanInput{
		TableName: aws.String(table), ConsistentRead: aws.Bool(true),
		FilterExpression:          aws.String("#s = :s"),
		ExpressionAttributeNames:  map[string]string{"#s": "scope"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":s": &types.AttributeValueMemberS{Value: scopeID}},
	})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		require.NoError(t, err)
		n += len(page.Items)
	}
	return n
}

// recordStatus is the stored status of the key's idempotency record, "" when there is none.
func recordStatus(t *testing.T, table, id string) string {
	t.Helper()
	item := rawGet(t, table, idKey(id))
	if item == nil {
		return ""
	}
	return item["status"].(*types.AttributeValueMemberS).Value
}

// faultScenario is one phase x fault x handler case. The expectations describe the first request; what its
// retries get follows from the state it leaves (see TestFaults).
type faultScenario struct {
	name   string
	kind   handlerKind
	policy idempotent.LeasePolicy
	rule   faultinject.Rule
	// then, when its Kind is set, is a second rule for the requests rule leaves alone.
	then faultinject.Rule
	// deadline, when set, is the first request's context deadline (the invocation's remaining time in Lambda).
	deadline time.Duration
	// retryAfter is the Retry-After of a 409 in progress. Empty means "1": no request of the route completed on
	// the rig's engine in measurable time (the clock is frozen), so the floor applies, well inside the lease.
	retryAfter string

	status int // the first request's HTTP status
	// attempts is the exact number of requests of the faulted phase on the wire during the first request (SDK
	// retries included); 0 means "more than one SDK call's worth": the engine retried the completion itself.
	attempts int
	ran      int    // executions during the first request
	record   string // the record's status after the first request: "", INPROGRESS or COMPLETED
	// storeErr: the first request logged an ERROR line and counted store_error in its EMF document.
	storeErr bool
}

func faultRule(phase faultinject.Phase, kind faultinject.Kind, when faultinject.When) faultinject.Rule {
	return faultinject.Rule{Phase: phase, When: when, Fault: faultinject.Fault{Kind: kind, Delay: 3 * time.Millisecond}}
}

// TestFaults injects each fault into each phase of the protocol and follows the key through its retries:
//
//   - the first request's answer, the attempts on the wire, the executions, the record it leaves, its logs and
//     metrics;
//   - then, faults cleared, a retry: a free key runs the handler, a COMPLETED one replays, an INPROGRESS one gets
//     409 + Retry-After without running anything;
//   - for an INPROGRESS key, the lease ends (the injected clock moves past it): LeaseReRun runs the handler
//     again, LeaseRefuse answers 409 outcome-unknown;
//   - finally, the executions across all of these, and a scan of the orders table: one order item, or none when
//     nothing ever ran to completion.
func TestFaults(t *testing.T) {
	table := newTable(t)
	orders := ddbtest.Table(t, ddbtest.Client(t), "orders")
	const (
		claim   = faultinject.PhaseClaim
		done    = faultinject.PhaseComplete
		tx      = faultinject.PhaseAtomicComplete
		release = faultinject.PhaseRelease
	)
	var (
		latency     = faultinject.Latency
		throttle    = faultinject.Throttle
		serverError = faultinject.ServerError
		reset       = faultinject.ConnReset
		lost        = faultinject.ResponseLost
		timeout     = faultinject.Timeout
		always      = faultinject.Always()
	)
	scenarios := []faultScenario{
		// Claim: the SDK retries; when it gives up the request is refused with 503 + Retry-After before the
		// handler runs, and nothing is stored.
		{name: "claim/latency", rule: faultRule(claim, latency, always), status: 201, attempts: 1, ran: 1, record: "COMPLETED"},
		{name: "claim/throttle twice", rule: faultRule(claim, throttle, faultinject.First(2)), status: 201, attempts: 3, ran: 1, record: "COMPLETED"},
		{name: "claim/throttle", rule: faultRule(claim, throttle, always), status: 503, attempts: 3, storeErr: true},
		{name: "claim/server error", rule: faultRule(claim, serverError, always), status: 503, attempts: 3, storeErr: true},
		{name: "claim/connection reset once", rule: faultRule(claim, reset, faultinject.Nth(1)), status: 201, attempts: 2, ran: 1, record: "COMPLETED"},
		{name: "claim/connection reset", rule: faultRule(claim, reset, always), status: 503, attempts: 3, storeErr: true},
		{name: "claim/timeout", rule: faultRule(claim, timeout, always), deadline: 100 * time.Millisecond, status: 503, attempts: 1, storeErr: true},
		// The claim was written but its answer lost; the SDK's retry fails its condition on the record the first
		// attempt wrote, and Store.Claim recognises its own owner token in it (ALL_OLD): the claim is won and the
		// handler runs, under either lease policy.
		{name: "claim/response lost", rule: faultRule(claim, lost, faultinject.Nth(1)), status: 201, attempts: 2, ran: 1, record: "COMPLETED"},
		{name: "claim/response lost, refuse policy", policy: idempotent.LeaseRefuse, rule: faultRule(claim, lost, faultinject.Nth(1)), status: 201, attempts: 2, ran: 1, record: "COMPLETED"},

		// Completion without effects: the engine retries within its budget; if it still fails, the handler's
		// response is returned, the failure logged and counted, and the key stays INPROGRESS until the lease ends.
		{name: "complete/latency", rule: faultRule(done, latency, always), status: 201, attempts: 1, ran: 1, record: "COMPLETED"},
		{name: "complete/throttle twice", rule: faultRule(done, throttle, faultinject.First(2)), status: 201, attempts: 3, ran: 1, record: "COMPLETED"},
		{name: "complete/throttle", rule: faultRule(done, throttle, always), status: 201, ran: 1, record: "INPROGRESS", storeErr: true},
		{name: "complete/throttle, refuse policy", policy: idempotent.LeaseRefuse, rule: faultRule(done, throttle, always), status: 201, ran: 1, record: "INPROGRESS", storeErr: true},
		{name: "complete/server error", rule: faultRule(done, serverError, always), status: 201, ran: 1, record: "INPROGRESS", storeErr: true},
		{name: "complete/connection reset", rule: faultRule(done, reset, always), status: 201, ran: 1, record: "INPROGRESS", storeErr: true},
		{name: "complete/timeout", rule: faultRule(done, timeout, always), status: 201, attempts: 1, ran: 1, record: "INPROGRESS", storeErr: true},
		// With 1 s left in the invocation the retries stop at its deadline (the default budget being 5 s), and
		// the lease ends one second (the margin) after it.
		{name: "complete/throttle, 1 s left in the invocation", rule: faultRule(done, throttle, always), deadline: time.Second,
			status: 201, ran: 1, record: "INPROGRESS", storeErr: true},
		// Ambiguous: applied, answer lost. The SDK's retry finds the very item it writes (ALL_OLD) and succeeds.
		{name: "complete/response lost once", rule: faultRule(done, lost, faultinject.Nth(1)), status: 201, attempts: 2, ran: 1, record: "COMPLETED"},
		// The first attempt committed and its answer was lost, then DynamoDB stops answering until the completion
		// budget runs out: the completion is reported failed (logged, counted) though it committed; retries
		// replay it and nothing runs again.
		{name: "complete/response lost, then unreachable", rule: faultRule(done, lost, faultinject.Nth(1)), then: faultRule(done, timeout, faultinject.From(2)),
			status: 201, attempts: 2, ran: 1, record: "COMPLETED", storeErr: true},

		// Completion with an effect (one TransactWriteItems): if it fails, the engine releases the key and
		// answers 503, logging and counting the completion's failure; nothing was committed, so the retry runs the
		// handler again and commits once.
		{name: "atomic/latency", kind: atomicEffect, rule: faultRule(tx, latency, always), status: 201, attempts: 1, ran: 1, record: "COMPLETED"},
		{name: "atomic/throttle twice", kind: atomicEffect, rule: faultRule(tx, throttle, faultinject.First(2)), status: 201, attempts: 3, ran: 1, record: "COMPLETED"},
		{name: "atomic/throttle", kind: atomicEffect, rule: faultRule(tx, throttle, always), status: 503, ran: 1, storeErr: true},
		{name: "atomic/server error", kind: atomicEffect, rule: faultRule(tx, serverError, always), status: 503, ran: 1, storeErr: true},
		{name: "atomic/connection reset", kind: atomicEffect, rule: faultRule(tx, reset, always), status: 503, ran: 1, storeErr: true},
		{name: "atomic/timeout", kind: atomicEffect, rule: faultRule(tx, timeout, always), status: 503, attempts: 1, ran: 1, storeErr: true},
		// Ambiguous: the SDK retries with the same ClientRequestToken and DynamoDB answers the committed
		// transaction with success.
		{name: "atomic/response lost once", kind: atomicEffect, rule: faultRule(tx, lost, faultinject.Nth(1)), status: 201, attempts: 2, ran: 1, record: "COMPLETED"},
		// The transaction committed, its answer was lost, then DynamoDB stops answering until the budget runs
		// out: the engine tries to release, the fenced release fails, and reading the record shows it COMPLETED
		// with the claim's own owner token: the transaction committed, so the handler's response is returned.
		{name: "atomic/response lost, then unreachable", kind: atomicEffect, rule: faultRule(tx, lost, faultinject.Nth(1)), then: faultRule(tx, timeout, faultinject.From(2)),
			status: 201, attempts: 2, ran: 1, record: "COMPLETED"},

		// Release after an unrecorded (5xx) response: if it fails, the key stays INPROGRESS until the lease ends.
		{name: "release/throttle twice", kind: failOnce, rule: faultRule(release, throttle, faultinject.First(2)), status: 500, attempts: 3, ran: 1},
		{name: "release/throttle", kind: failOnce, rule: faultRule(release, throttle, always), status: 500, attempts: 3, ran: 1, record: "INPROGRESS", storeErr: true},
		{name: "release/connection reset", kind: failOnce, rule: faultRule(release, reset, always), status: 500, attempts: 3, ran: 1, record: "INPROGRESS", storeErr: true},
		{name: "release/timeout", kind: failOnce, rule: faultRule(release, timeout, always), status: 500, attempts: 1, ran: 1, record: "INPROGRESS", storeErr: true},
		// The delete applied, its answer was lost; the SDK's retry finds no record, which is a successful
		// release: the key is free and nothing is logged.
		{name: "release/response lost once", kind: failOnce, rule: faultRule(release, lost, faultinject.Nth(1)), status: 500, attempts: 2, ran: 1},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			runFaultScenario(t, table, orders, sc)
		})
	}
}

func runFaultScenario(t *testing.T, table, orders string, sc faultScenario) {
	var budget time.Duration
	persistent := sc.then.Fault.Kind != faultinject.None || sc.rule.When == faultinject.Always() || sc.rule.When == (faultinject.When{})
	if persistent && sc.rule.Phase != faultinject.PhaseClaim && sc.deadline == 0 {
		budget = faultCompletionBudget
	}
	retryAfter := sc.retryAfter
	if retryAfter == "" {
		retryAfter = "1"
	}
	r := newFaultRig(t, table, orders, sc.kind, sc.policy, budget)
	key := faultKey(t)
	id := idempotent.Scope{Principal: "anonymous", Method: http.MethodPost, Route: "/orders"}.ID(key)
	r.inj.Add(sc.rule)
	if sc.then.Fault.Kind != faultinject.None {
		r.inj.Add(sc.then)
	}

	// The first request, under the fault.
	ctx, cancel := context.Background(), context.CancelFunc(func() {})
	if sc.deadline > 0 {
		ctx, cancel = context.WithTimeout(ctx, sc.deadline)
	}
	start := time.Now()
	first := send(t, ctx, r.first, key)
	cancel()
	elapsed := time.Since(start)
	attempts := r.inj.Count("", sc.rule.Phase)
	t.Logf("first request: %d in %s; %s attempts on the wire: %d; counts %v", first.StatusCode,
		elapsed.Round(time.Millisecond), sc.rule.Phase, attempts, r.inj.Counts())

	assert.Equal(t, sc.status, first.StatusCode, "first request: %s", first.Body)
	assert.Equal(t, int32(sc.ran), r.runs.Load(), "executions in the first request")
	if sc.attempts > 0 {
		assert.Equal(t, sc.attempts, attempts, "attempts of the faulted phase")
	} else {
		assert.Greater(t, attempts, faultSDKAttempts, "the engine retried the completion beyond the SDK's own attempts")
		// The retries stop at the budget, or at the invocation's deadline when that comes first. Counted rather
		// than timed, so a busy machine cannot fail it: the engine waits 20 ms, 40 ms, 80 ms... between attempts,
		// so within the bound at most maxEngineAttempts(bound) of them start, each making the SDK's own attempts.
		bound := faultCompletionBudget
		if sc.deadline > 0 {
			bound = sc.deadline
		}
		assert.LessOrEqual(t, attempts, maxEngineAttempts(bound)*faultSDKAttempts, "the retries stay within the completion budget")
	}
	switch first.StatusCode {
	case http.StatusServiceUnavailable:
		assert.Equal(t, "2", first.Headers["Retry-After"])
		assert.Contains(t, first.Body, "store-unavailable")
	case http.StatusConflict:
		assert.Equal(t, retryAfter, first.Headers["Retry-After"])
		assert.Contains(t, first.Body, "in-progress")
	}
	assert.Equal(t, sc.record, recordStatus(t, table, id), "record after the first request")
	checkObserved(t, r, sc)

	// Retries of the same request, faults cleared.
	r.inj.Clear()
	runs := int(r.runs.Load())
	reran := false // a retry ran the handler to completion
	switch sc.record {
	case "":
		resp := send(t, context.Background(), r.retry, key)
		require.Equal(t, http.StatusCreated, resp.StatusCode, resp.Body)
		assert.Equal(t, "false", resp.Headers["Idempotent-Replayed"])
		runs++
		reran = true
	case "COMPLETED":
		resp := send(t, context.Background(), r.retry, key)
		require.Equal(t, http.StatusCreated, resp.StatusCode, resp.Body)
		assert.Equal(t, "true", resp.Headers["Idempotent-Replayed"])
		if first.StatusCode == http.StatusCreated {
			assert.Equal(t, first.Body, resp.Body, "the first response, replayed")
		}
	case "INPROGRESS":
		for range 2 {
			resp := send(t, context.Background(), r.retry, key)
			require.Equal(t, http.StatusConflict, resp.StatusCode, resp.Body)
			assert.Equal(t, retryAfter, resp.Headers["Retry-After"])
		}
		assert.Equal(t, int32(runs), r.runs.Load(), "nothing runs while the lease lasts")
		r.clock.Advance(faultLease + time.Second)
		resp := send(t, context.Background(), r.retry, key)
		if sc.policy == idempotent.LeaseRefuse {
			require.Equal(t, http.StatusConflict, resp.StatusCode, resp.Body)
			assert.Contains(t, resp.Body, "outcome-unknown")
			assert.Empty(t, resp.Headers["Retry-After"])
		} else {
			require.Equal(t, http.StatusCreated, resp.StatusCode, resp.Body)
			assert.Equal(t, "false", resp.Headers["Idempotent-Replayed"], "the lease ended: run again")
			runs++
			reran = true
		}
	}
	// And once more: a replay (or, under LeaseRefuse, the same refusal); nothing runs.
	last := send(t, context.Background(), r.retry, key)
	if sc.policy == idempotent.LeaseRefuse && sc.record == "INPROGRESS" {
		assert.Equal(t, http.StatusConflict, last.StatusCode)
	} else {
		assert.Equal(t, http.StatusCreated, last.StatusCode, last.Body)
		assert.Equal(t, "true", last.Headers["Idempotent-Replayed"])
	}
	assert.Equal(t, int32(runs), r.runs.Load(), "executions across the first request and its retries")
	t.Logf("executions across the first request and its retries: %d", r.runs.Load())

	// The business data: exactly one order once a run wrote it (the plain handler writes it itself, whatever
	// happens to the completion; the atomic one only with a committed completion), none otherwise; the plain
	// handler's own conditional write applied at most once.
	want := 0
	if reran || sc.record == "COMPLETED" || (sc.kind == plain && sc.ran == 1) {
		want = 1
	}
	assert.Equal(t, want, orderItems(t, orders, id), "order items for the key")
	assert.LessOrEqual(t, r.written.Load(), int32(1), "the plain handler's write applied at most once")
}

// checkObserved checks the first request's outcome event, ERROR log line and EMF counts.
func checkObserved(t *testing.T, r *faultRig, sc faultScenario) {
	t.Helper()
	ev := r.lastEvent(t)
	var errorLines []map[string]any
	for _, l := range r.logs.take(t) {
		if l["level"] == "ERROR" {
			errorLines = append(errorLines, l)
		}
	}
	counted := map[string]bool{}
	for _, doc := range r.metrics.take(t) {
		for name := range doc {
			counted[name] = true
		}
	}
	if !sc.storeErr {
		assert.Empty(t, errorLines, "no ERROR log line")
		assert.False(t, counted["store_error"], "store_error not counted")
		return
	}
	require.Len(t, errorLines, 1, "one ERROR log line")
	assert.True(t, counted["store_error"], "store_error counted")
	line := errorLines[0]
	assert.Equal(t, ev.ID, line["idempotency_id"])
	if sc.ran == 0 {
		// Refused before the handler ran.
		assert.Equal(t, idempotent.OutcomeStoreError, ev.Outcome)
		assert.Equal(t, "idempotency store failed; request refused", line["msg"])
		assert.Contains(t, line["error"], "store claim")
		return
	}
	// The handler ran; the store failed afterwards.
	assert.Equal(t, idempotent.OutcomeExecuted, ev.Outcome)
	require.Error(t, ev.StoreErr)
	assert.True(t, counted["executed"], "executed counted too")
	assert.Equal(t, "idempotency store failed after the handler ran", line["msg"])
	op := map[faultinject.Phase]string{
		faultinject.PhaseComplete:       "store complete",
		faultinject.PhaseAtomicComplete: "store complete",
		faultinject.PhaseRelease:        "store release",
	}[sc.rule.Phase]
	assert.Contains(t, line["store_error"], op)
}

// TestFaultsOnRead: the consistent GetItem a claim falls back on when DynamoDB leaves the old item out of its
// condition failure (stripItem) is retried by the SDK; when it keeps failing, the duplicate is refused with 503
// and nothing runs.
func TestFaultsOnRead(t *testing.T) {
	table := newTable(t)
	tests := []struct {
		name     string
		when     faultinject.When
		status   int
		replayed string
	}{
		{"throttled twice", faultinject.First(2), http.StatusCreated, "true"},
		{"throttled", faultinject.Always(), http.StatusServiceUnavailable, "false"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inj := faultinject.New(func(o *faultinject.Options) { o.IdempotencyTable = table })
			client := faultClient(t, inj)
			var runs atomic.Int32
			h := func(context.Context, events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
				runs.Add(1)
				return events.APIGatewayProxyResponse{StatusCode: http.StatusCreated, Body: `{"ok":true}`}, nil
			}
			quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
			handler := apigw.REST(idempotent.New(dynamostore.New(stripItem{client}, table), idempotent.WithLogger(quiet)), h)
			key := faultKey(t)
			first, err := handler(context.Background(), orderRequest(key))
			require.NoError(t, err)
			require.Equal(t, http.StatusCreated, first.StatusCode)

			inj.Add(faultRule(faultinject.PhaseRead, faultinject.Throttle, tc.when))
			inj.Reset()
			dup, err := handler(context.Background(), orderRequest(key))
			require.NoError(t, err)
			assert.Equal(t, tc.status, dup.StatusCode, dup.Body)
			assert.Equal(t, tc.replayed, dup.Headers["Idempotent-Replayed"])
			assert.Equal(t, 3, inj.Count("GetItem", faultinject.PhaseRead), "SDK attempts of the read")
			assert.Equal(t, int32(1), runs.Load(), "the duplicate never runs the handler")
		})
	}
}

// maxEngineAttempts is how many completion attempts can start within budget: the k-th starts no earlier than the
// sum of the k-1 backoffs before it (20 ms, doubling).
func maxEngineAttempts(budget time.Duration) int {
	n, waited, backoff := 1, time.Duration(0), 20*time.Millisecond
	for waited+backoff < budget {
		waited += backoff
		backoff *= 2
		n++
	}
	return n
}
