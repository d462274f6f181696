package payment_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/handlers/payment/payment"
	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/apigw"
	"github.com/idemkit/idemkit/idempotent/dynamostore"
	"github.com/idemkit/idemkit/idempotent/idempotenttest"
	"github.com/idemkit/idemkit/internal/ddblocal/ddbtest"
	"github.com/idemkit/idemkit/internal/faultinject"
)

const faultLease = 30 * time.Second

// faultFunction is the payment function wired as its main wires it (the payment committed in the completion
// transaction, its ID from the idempotency record's), on DynamoDB Local, with every DynamoDB call going through
// one fault injector and the SDK's retries made explicit: 3 attempts 1 ms apart, no retry quota.
//
// Two instances of the function share the injector and the clock: first, whose completion budget (retries
// included) is the scenario's, and retry, with the engine's default of 5 s, so a retry is never cut short by a
// DynamoDB Local that a busy machine slows down. Each instance has its own processor, as two Lambda instances
// do; the processors share one durable ledger (ProcessorTable in the template), reached without faults because
// it stands for the card processor's side, not for the service's DynamoDB.
type faultFunction struct {
	inj          *faultinject.Injector
	procs        [2]*payment.SimulatedProcessor
	ledgerTable  string
	clock        *idempotenttest.Clock
	first, retry func(context.Context, events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error)
}

// calls is the number of Charge calls both instances made.
func (f *faultFunction) calls() int { return f.procs[0].Calls() + f.procs[1].Calls() }

// charges is the number of charges the processor recorded for key: money moved, across instances.
func (f *faultFunction) charges(t *testing.T, key string) int {
	t.Helper()
	return ledgerEntries(t, f.ledgerTable, paymentIDOf(key))
}

// createIdempotencyTable creates an idempotency table as dynamostore.CreateTable makes it and deletes it when the
// test ends.
func createIdempotencyTable(t *testing.T, client *dynamodb.Client) string {
	t.Helper()
	name := ddbtest.UniqueName(t, "idem")
	require.NoError(t, dynamostore.CreateTable(context.Background(), client, name))
	t.Cleanup(func() {
		_, _ = client.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)})
	})
	return name
}

// createProcessorTable creates a table shaped like ProcessorTable in template.yaml.
func createProcessorTable(t *testing.T, client *dynamodb.Client) string {
	t.Helper()
	return ddbtest.TableWithKey(t, client, "processor", "reference")
}

// ledgerEntries counts the processor's charges with reference ref.
func ledgerEntries(t *testing.T, table, ref string) int {
	t.Helper()
	out, err := ddbtest.Client(t).Scan(context.Background(), &dynamodb.ScanInput{
		TableName: aws.String(table), ConsistentRead: aws.Bool(true),
		FilterExpression:          aws.String("#ref = :r"),
		ExpressionAttributeNames:  map[string]string{"#ref": "reference"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":r": &types.AttributeValueMemberS{Value: ref}},
	})
	require.NoError(t, err)
	return len(out.Items)
}

func paymentIDOf(key string) string {
	return payment.PaymentID(idempotent.Scope{Principal: "anonymous", Method: http.MethodPost, Route: payment.ResourcePayments}.ID(key))
}

// newFaultFunction's budget bounds the first instance's completion retries; zero keeps the default (5 s). An
// empty ledgerTable gives each instance's processor its own in-process memory of references instead.
func newFaultFunction(t *testing.T, idemTable, paymentsTable, ledgerTable string, budget time.Duration) *faultFunction {
	t.Helper()
	newProc := func() *payment.SimulatedProcessor {
		if ledgerTable == "" {
			return payment.NewSimulatedProcessor()
		}
		ledger := payment.DynamoLedger{DB: ddbtest.Client(t), Table: ledgerTable}
		return payment.NewSimulatedProcessor(func(o *payment.ProcessorOptions) { o.Ledger = ledger })
	}
	f := &faultFunction{
		inj:         faultinject.New(func(o *faultinject.Options) { o.IdempotencyTable = idemTable }),
		procs:       [2]*payment.SimulatedProcessor{newProc(), newProc()},
		ledgerTable: ledgerTable,
		clock:       idempotenttest.NewClock(time.Now().Truncate(time.Millisecond)),
	}
	db := dynamodb.New(ddbtest.Client(t).Options(), func(o *dynamodb.Options) {
		o.HTTPClient = f.inj.Client(nil)
		o.Retryer = faultinject.Retryer(3)
	})
	// The engine's log, shown when the test fails.
	var logs syncLog
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("engine log:\n%s", logs.String())
		}
	})
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	direct := payment.DirectCommitter{DB: db}
	newService := func(proc *payment.SimulatedProcessor) *payment.Service {
		return payment.New(db, paymentsTable, func(o *payment.Options) {
			o.Processor = proc
			o.Logger = quiet
			o.ScopeID = func(ctx context.Context) (string, bool) {
				inv, ok := idempotent.FromContext(ctx)
				return inv.ID, ok
			}
			o.Committer = payment.CommitterFunc(func(ctx context.Context, w types.TransactWriteItem) error {
				if idempotent.AddEffect(ctx, w) {
					return nil
				}
				return direct.Commit(ctx, w)
			})
		})
	}
	instance := func(budget time.Duration, proc *payment.SimulatedProcessor) func(context.Context, events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
		engine := idempotent.New(dynamostore.New(db, idemTable),
			idempotent.WithClock(f.clock),
			idempotent.WithLease(faultLease),
			idempotent.WithCompletionTimeout(budget),
			idempotent.WithLogger(logger),
			idempotent.WithOutcomeHook(func(_ context.Context, ev idempotent.Event) {
				if ev.Err != nil {
					logger.Info("outcome", "outcome", ev.Outcome.String(), "error", ev.Err.Error())
				}
			}))
		return apigw.REST(engine, newService(proc).Handle)
	}
	f.first, f.retry = instance(budget, f.procs[0]), instance(0, f.procs[1])
	return f
}

// syncLog is a buffer for a logger that several goroutines may write to.
type syncLog struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func post(t *testing.T, instance func(context.Context, events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error), key string) events.APIGatewayProxyResponse {
	t.Helper()
	ev := createEvent(t)
	ev.Headers["Idempotency-Key"] = key
	ev.MultiValueHeaders["Idempotency-Key"] = []string{key}
	resp, err := instance(context.Background(), ev)
	require.NoError(t, err)
	return resp
}

// paymentItems scans the payments table for items with the payment ID the key maps to.
func paymentItems(t *testing.T, table, key string) int {
	t.Helper()
	id := payment.PaymentID(idempotent.Scope{Principal: "anonymous", Method: http.MethodPost, Route: payment.ResourcePayments}.ID(key))
	out, err := ddbtest.Client(t).Scan(context.Background(), &dynamodb.ScanInput{
		TableName: aws.String(table), ConsistentRead: aws.Bool(true),
		FilterExpression:          aws.String("id = :id"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":id": &types.AttributeValueMemberS{Value: id}},
	})
	require.NoError(t, err)
	return len(out.Items)
}

// TestPaymentFaults runs POST /payments under DynamoDB faults and follows each key through its retries. What
// must hold whatever the fault: at most one payment item per key, at most one charge per key (the processor
// dedupes by the payment's reference), and the handler runs again only after a run whose payment did not commit.
func TestPaymentFaults(t *testing.T) {
	client := ddbtest.Client(t)
	paymentsTable := createPaymentsTable(t, client)
	ledgerTable := createProcessorTable(t, client)
	idemTable := createIdempotencyTable(t, client)

	fault := func(phase faultinject.Phase, kind faultinject.Kind, when faultinject.When) faultinject.Rule {
		return faultinject.Rule{Phase: phase, When: when, Fault: faultinject.Fault{Kind: kind}}
	}
	tests := []struct {
		name     string
		rule     faultinject.Rule
		then     faultinject.Rule // a second rule, when its Kind is set
		status   int              // the first request's answer
		attempts int              // requests of the faulted kind on the wire in the first request; 0: not checked
		calls    int              // processor calls in the first request
		paid     int              // payment items after the first request
		// then, faults cleared:
		leaseEnd bool // the first request left the key INPROGRESS: 409 until the lease ends, then it runs
		replay   bool // the first request's payment committed: the retry replays it
	}{
		{name: "claim throttled: refused before charging", rule: fault(faultinject.PhaseClaim, faultinject.Throttle, faultinject.Always()),
			status: 503, attempts: 3},
		{name: "claim answer lost: the store recognises its own claim and the payment runs", rule: fault(faultinject.PhaseClaim, faultinject.ResponseLost, faultinject.Nth(1)),
			status: 201, attempts: 2, calls: 1, paid: 1, replay: true},
		{name: "completion throttled twice: the SDK retries", rule: fault(faultinject.PhaseAtomicComplete, faultinject.Throttle, faultinject.First(2)),
			status: 201, attempts: 3, calls: 1, paid: 1, replay: true},
		{name: "completion fails: nothing committed, key released", rule: fault(faultinject.PhaseAtomicComplete, faultinject.ServerError, faultinject.Always()),
			status: 503, calls: 1},
		{name: "completion times out: nothing committed, key released", rule: fault(faultinject.PhaseAtomicComplete, faultinject.Timeout, faultinject.Always()),
			status: 503, attempts: 1, calls: 1},
		{name: "completion answer lost once: the SDK's retry succeeds", rule: fault(faultinject.PhaseAtomicComplete, faultinject.ResponseLost, faultinject.Nth(1)),
			status: 201, attempts: 2, calls: 1, paid: 1, replay: true},
		{name: "completion committed, answer lost, then DynamoDB unreachable: the engine reads its own completion, 201",
			rule:   fault(faultinject.PhaseAtomicComplete, faultinject.ResponseLost, faultinject.Nth(1)),
			then:   fault(faultinject.PhaseAtomicComplete, faultinject.Timeout, faultinject.From(2)),
			status: 201, attempts: 2, calls: 1, paid: 1, replay: true},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var budget time.Duration
			if tc.rule.Phase == faultinject.PhaseAtomicComplete && (tc.rule.When == faultinject.Always() || tc.then.Fault.Kind != faultinject.None) {
				budget = time.Second // the fault outlasts the retries: keep them short
			}
			f := newFaultFunction(t, idemTable, paymentsTable, ledgerTable, budget)
			key := "payment-fault-" + strings.Repeat("x", i+1)
			f.inj.Add(tc.rule)
			if tc.then.Fault.Kind != faultinject.None {
				f.inj.Add(tc.then)
			}

			first := post(t, f.first, key)
			attempts := 0
			for _, r := range f.inj.Records() {
				if r.Fault != faultinject.None || (tc.rule.Phase != faultinject.PhaseAny && r.Phase == tc.rule.Phase) {
					attempts++
				}
			}
			t.Logf("first request: %d; faulted-kind attempts %d; wire %v; processor calls %d", first.StatusCode, attempts, f.inj.Counts(), f.calls())
			require.Equal(t, tc.status, first.StatusCode, first.Body)
			if tc.attempts > 0 {
				assert.Equal(t, tc.attempts, attempts)
			}
			switch tc.status {
			case http.StatusServiceUnavailable:
				assert.NotEmpty(t, first.Headers["Retry-After"])
				// The card was charged or the transaction may have committed late: never "nothing changed".
				assert.NotContains(t, first.Body, "nothing was changed")
			case http.StatusConflict:
				assert.Equal(t, "30", first.Headers["Retry-After"])
			}
			assert.Equal(t, tc.calls, f.calls(), "processor calls in the first request")
			assert.Equal(t, tc.paid, paymentItems(t, paymentsTable, key), "payment items after the first request")

			f.inj.Clear()
			calls := f.calls()
			if tc.leaseEnd {
				held := post(t, f.retry, key)
				assert.Equal(t, http.StatusConflict, held.StatusCode, held.Body)
				assert.Equal(t, "30", held.Headers["Retry-After"])
				assert.Equal(t, calls, f.calls(), "nothing runs while the lease lasts")
				f.clock.Advance(faultLease + time.Second)
			}
			retry := post(t, f.retry, key)
			require.Equal(t, http.StatusCreated, retry.StatusCode, retry.Body)
			if tc.replay {
				assert.Equal(t, "true", retry.Headers["Idempotent-Replayed"], "the committed payment is replayed")
				assert.Equal(t, calls, f.calls(), "not charged again")
				if tc.status == http.StatusCreated {
					assert.Equal(t, first.Body, retry.Body)
				}
			} else {
				assert.Equal(t, "false", retry.Headers["Idempotent-Replayed"])
				assert.Equal(t, calls+1, f.calls(), "the retry runs the payment (its first run committed nothing)")
			}
			again := post(t, f.retry, key)
			assert.Equal(t, "true", again.Headers["Idempotent-Replayed"])
			assert.Equal(t, retry.Body, again.Body)

			assert.Equal(t, 1, paymentItems(t, paymentsTable, key), "one payment item for the key")
			assert.Equal(t, 1, f.charges(t, key), "money moved once for the key, across the two instances")
			t.Logf("processor calls across the first request and its retries: %d", f.calls())
		})
	}
}

// TestChargedOnceAcrossInstances is the "two charges" case: the payment's atomic completion does not reach
// DynamoDB within the first instance's completion budget (here the fault holds it until the budget, injected
// short, has passed), so that instance releases the key and answers 503 after the card was charged. The client's
// retry lands on another instance, with its own processor client, and runs the payment again. The charge carries
// the same reference, derived from the idempotency record's scoped ID, and the processor's durable ledger
// recognises it: one charge, one payment, and the retry's 201 carries the first authorization.
func TestChargedOnceAcrossInstances(t *testing.T) {
	client := ddbtest.Client(t)
	paymentsTable := createPaymentsTable(t, client)
	ledgerTable := createProcessorTable(t, client)
	idemTable := createIdempotencyTable(t, client)
	f := newFaultFunction(t, idemTable, paymentsTable, ledgerTable, time.Second)
	const key = "charged-once-across-instances"
	f.inj.Add(faultinject.Rule{Phase: faultinject.PhaseAtomicComplete, When: faultinject.Nth(1), Fault: faultinject.Fault{Kind: faultinject.Timeout}})

	first := post(t, f.first, key)
	require.Equal(t, http.StatusServiceUnavailable, first.StatusCode, first.Body)
	assert.Equal(t, "2", first.Headers["Retry-After"])
	assert.Contains(t, first.Body, "whether it took effect is unknown")
	assert.NotContains(t, first.Body, "nothing was changed", "the card was charged: the answer must not say otherwise")
	require.Equal(t, 1, f.procs[0].Calls())
	assert.Equal(t, 1, f.charges(t, key), "the first instance charged the card")
	assert.Equal(t, 0, paymentItems(t, paymentsTable, key), "its payment did not commit")

	retry := post(t, f.retry, key)
	require.Equal(t, http.StatusCreated, retry.StatusCode, retry.Body)
	assert.Equal(t, "false", retry.Headers["Idempotent-Replayed"], "the retry ran the payment again")
	assert.Equal(t, 1, f.procs[1].Calls(), "the second instance called its processor")
	assert.Equal(t, 1, f.charges(t, key), "the processor recognised the reference: charged once across instances")
	assert.Equal(t, 1, paymentItems(t, paymentsTable, key))

	again := post(t, f.first, key)
	assert.Equal(t, "true", again.Headers["Idempotent-Replayed"])
	assert.Equal(t, retry.Body, again.Body)
	assert.Equal(t, 1, f.procs[0].Calls(), "a replay calls no processor")
}

// TestChargedOnceWithoutDurableLedger shows what the durable ledger prevents: the same fault with each
// instance's processor remembering references only in its own memory charges the card twice.
func TestChargedOnceWithoutDurableLedger(t *testing.T) {
	client := ddbtest.Client(t)
	paymentsTable := createPaymentsTable(t, client)
	idemTable := createIdempotencyTable(t, client)
	f := newFaultFunction(t, idemTable, paymentsTable, "", time.Second)
	const key = "charged-twice-without-ledger"
	f.inj.Add(faultinject.Rule{Phase: faultinject.PhaseAtomicComplete, When: faultinject.Nth(1), Fault: faultinject.Fault{Kind: faultinject.Timeout}})
	require.Equal(t, http.StatusServiceUnavailable, post(t, f.first, key).StatusCode)
	require.Equal(t, http.StatusCreated, post(t, f.retry, key).StatusCode)
	assert.Equal(t, 2, f.procs[0].Charges()+f.procs[1].Charges(), "each instance moved money")
}

// TestPaymentCalls counts the DynamoDB requests of POST /payments wired as main wires it, at the transport: a
// first request is 2 (the claim, then one transaction with the COMPLETED record and the payment; nothing is read
// before charging, since the processor de-duplicates by the reference), a duplicate on an instance that has not
// cached the record 1 (the claim, whose failed condition returns the record), a mismatch 1. The processor's
// ledger is not counted: it stands for the card processor's side.
func TestPaymentCalls(t *testing.T) {
	client := ddbtest.Client(t)
	paymentsTable := createPaymentsTable(t, client)
	idemTable := createIdempotencyTable(t, client)
	f := newFaultFunction(t, idemTable, paymentsTable, createProcessorTable(t, client), 0)
	const key = "payment-calls"

	first := post(t, f.first, key)
	require.Equal(t, http.StatusCreated, first.StatusCode, first.Body)
	assert.Equal(t, map[string]int{"PutItem/claim": 1, "TransactWriteItems/atomic-complete": 1}, f.inj.Counts(), "first request")

	f.inj.Reset()
	dup := post(t, f.retry, key) // the other instance: its cache has no record
	require.Equal(t, "true", dup.Headers["Idempotent-Replayed"])
	assert.Equal(t, map[string]int{"PutItem/claim": 1}, f.inj.Counts(), "duplicate")

	f.inj.Reset()
	ev := createEvent(t)
	ev.Headers["Idempotency-Key"] = key
	ev.MultiValueHeaders["Idempotency-Key"] = []string{key}
	ev.Body = bodyWith(t, func(b map[string]any) { b["amount"] = 2001 })
	mismatch, err := f.first(context.Background(), ev)
	require.NoError(t, err)
	require.Equal(t, http.StatusUnprocessableEntity, mismatch.StatusCode, mismatch.Body)
	assert.Equal(t, 1, len(f.inj.Records()), "mismatch: %v", f.inj.Counts())
}

// TestPaymentReadFaults: the service's own reads under DynamoDB faults through the SDK's real retries. A
// connection reset on every attempt, like throttling, is transient: 503 with Retry-After, never 500. The read
// after a charge the processor reports as made before is covered too: refused 503 and not recorded, then the
// retry answers 201 with one charge.
func TestPaymentReadFaults(t *testing.T) {
	client := ddbtest.Client(t)
	paymentsTable := createPaymentsTable(t, client)
	ledgerTable := createProcessorTable(t, client)
	idemTable := createIdempotencyTable(t, client)
	reset := faultinject.Rule{Op: "GetItem", Table: paymentsTable, Fault: faultinject.Fault{Kind: faultinject.ConnReset}}

	t.Run("GET /payments/{id}, reset on every attempt", func(t *testing.T) {
		f := newFaultFunction(t, idemTable, paymentsTable, ledgerTable, 0)
		f.inj.Add(reset)
		id := paymentIDOf("read-fault")
		ev := events.APIGatewayProxyRequest{HTTPMethod: http.MethodGet, Resource: payment.ResourcePayment, Path: "/payments/" + id,
			PathParameters: map[string]string{"id": id}}
		resp, err := f.first(context.Background(), ev)
		require.NoError(t, err)
		require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, resp.Body)
		assert.Equal(t, "1", resp.Headers["Retry-After"])
		assert.Equal(t, 3, f.inj.Count("GetItem", faultinject.PhaseAny), "the SDK's three attempts, all reset")
		f.inj.Clear()
		resp, err = f.first(context.Background(), ev)
		require.NoError(t, err)
		assert.Equal(t, http.StatusNotFound, resp.StatusCode, "the retry reaches DynamoDB")
	})

	t.Run("the read after a replayed charge, reset on every attempt", func(t *testing.T) {
		f := newFaultFunction(t, idemTable, paymentsTable, ledgerTable, time.Second)
		const key = "replayed-charge-read-fault"
		f.inj.Add(faultinject.Rule{Phase: faultinject.PhaseAtomicComplete, When: faultinject.Nth(1), Fault: faultinject.Fault{Kind: faultinject.Timeout}})
		require.Equal(t, http.StatusServiceUnavailable, post(t, f.first, key).StatusCode)
		f.inj.Clear()
		f.inj.Add(reset)
		second := post(t, f.retry, key)
		require.Equal(t, http.StatusServiceUnavailable, second.StatusCode, second.Body)
		assert.Equal(t, "1", second.Headers["Retry-After"])
		f.inj.Clear()
		third := post(t, f.retry, key)
		require.Equal(t, http.StatusCreated, third.StatusCode, third.Body)
		assert.Equal(t, 1, f.charges(t, key), "three runs, one charge")
		assert.Equal(t, 1, paymentItems(t, paymentsTable, key))
	})
}
