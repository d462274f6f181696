package faultinject_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/dynamostore"
	"github.com/idemkit/idemkit/internal/faultinject"
	"github.com/idemkit/idemkit/internal/testwait"
)

// backend is a stand-in for DynamoDB that applies (counts) every request it receives and answers {}.
type backend struct {
	*httptest.Server
	mu      sync.Mutex
	applied []string // operations, in arrival order
}

func newBackend(t *testing.T) *backend {
	t.Helper()
	b := &backend{}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		b.mu.Lock()
		b.applied = append(b.applied, strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "DynamoDB_20120810."))
		b.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		_, _ = w.Write([]byte(`{}`))
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *backend) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.applied)
}

// sdkClient is a DynamoDB client for endpoint with faultinject.Retryer(attempts).
func sdkClient(endpoint string, httpClient dynamodb.HTTPClient, attempts int) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("local", "local", ""),
		HTTPClient:   httpClient,
		Retryer:      faultinject.Retryer(attempts),
	})
}

const idemTable = "Idem"

// TestClassify drives the real dynamostore and SDK, so the phases are read from the requests the engine really
// sends, and adds the business requests that must stay PhaseOther.
func TestClassify(t *testing.T) {
	be := newBackend(t)
	inj := faultinject.New(func(o *faultinject.Options) { o.IdempotencyTable = idemTable })
	client := sdkClient(be.URL, inj.Client(nil), 1)
	store := dynamostore.New(client, idemTable)
	ctx := context.Background()
	now := time.Now()
	rec := idempotent.Record{ID: strings.Repeat("a", 64), Status: idempotent.StatusInProgress, Fingerprint: "fp",
		Owner: "o", LeaseEnd: now.Add(time.Minute), ExpiresAt: now.Add(time.Hour)}
	done := rec
	done.Status, done.Response = idempotent.StatusCompleted, []byte(`{}`)
	paymentPut := &types.Put{TableName: aws.String("Payments"), Item: map[string]types.AttributeValue{
		"id": &types.AttributeValueMemberS{Value: "pay_1"}, "status": &types.AttributeValueMemberS{Value: "succeeded"}}}

	tests := []struct {
		name string
		do   func() error
		want faultinject.Call
	}{
		{"claim", func() error { _, err := store.Claim(ctx, idempotent.Claim{Record: rec, Now: now}); return err },
			faultinject.Call{Op: "PutItem", Phase: faultinject.PhaseClaim, Table: idemTable}},
		{"complete", func() error { return store.Complete(ctx, done, nil) },
			faultinject.Call{Op: "PutItem", Phase: faultinject.PhaseComplete, Table: idemTable}},
		{"atomic complete", func() error {
			return store.Complete(ctx, done, []idempotent.Effect{types.TransactWriteItem{Put: paymentPut}})
		}, faultinject.Call{Op: "TransactWriteItems", Phase: faultinject.PhaseAtomicComplete, Table: idemTable}},
		{"release", func() error { return store.Release(ctx, rec.ID, rec.Owner) },
			faultinject.Call{Op: "DeleteItem", Phase: faultinject.PhaseRelease, Table: idemTable}},
		{"read", func() error { _, err := store.Get(ctx, rec.ID, now); return err },
			faultinject.Call{Op: "GetItem", Phase: faultinject.PhaseRead, Table: idemTable}},
		{"business put with a status attribute", func() error {
			_, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: paymentPut.TableName, Item: paymentPut.Item})
			return err
		}, faultinject.Call{Op: "PutItem", Phase: faultinject.PhaseOther, Table: "Payments"}},
		{"business read", func() error {
			_, err := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("Payments"),
				Key: map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: "pay_1"}}})
			return err
		}, faultinject.Call{Op: "GetItem", Phase: faultinject.PhaseOther, Table: "Payments"}},
		{"business transaction", func() error {
			_, err := client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
				{Put: paymentPut}, {Delete: &types.Delete{TableName: aws.String("Other"), Key: paymentPut.Item}}}})
			return err
		}, faultinject.Call{Op: "TransactWriteItems", Phase: faultinject.PhaseOther, Table: "Payments"}},
		{"an INPROGRESS-looking item on another table", func() error {
			_, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("Other"), Item: map[string]types.AttributeValue{
				"id": &types.AttributeValueMemberS{Value: "x"}, "status": &types.AttributeValueMemberS{Value: "INPROGRESS"}}})
			return err
		}, faultinject.Call{Op: "PutItem", Phase: faultinject.PhaseOther, Table: "Other"}},
		{"table management", func() error {
			_, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(idemTable)})
			return err
		}, faultinject.Call{Op: "DescribeTable", Phase: faultinject.PhaseOther, Table: idemTable}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inj.Reset()
			require.NoError(t, tc.do())
			recs := inj.Records()
			require.Len(t, recs, 1)
			assert.Equal(t, tc.want, recs[0].Call)
			assert.True(t, recs[0].Forwarded)
			assert.Equal(t, faultinject.None, recs[0].Fault)
		})
	}
}

func TestClassifyWithoutTable(t *testing.T) {
	be := newBackend(t)
	inj := faultinject.New() // any table holds idempotency records
	client := sdkClient(be.URL, inj.Client(nil), 1)
	_, err := client.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String("Anything"),
		Key: map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: "x"}}})
	require.NoError(t, err)
	_, err = client.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String("Anything"), Item: map[string]types.AttributeValue{
		"id": &types.AttributeValueMemberS{Value: "x"}, "status": &types.AttributeValueMemberS{Value: "INPROGRESS"}}})
	require.NoError(t, err)
	assert.Equal(t, map[string]int{"GetItem/read": 1, "PutItem/claim": 1}, inj.Counts())
}

// claimInput is the PutItem of an INPROGRESS record, as dynamostore's claim sends it.
func claimInput() *dynamodb.PutItemInput {
	return &dynamodb.PutItemInput{TableName: aws.String(idemTable), Item: map[string]types.AttributeValue{
		"id": &types.AttributeValueMemberS{Value: "x"}, "status": &types.AttributeValueMemberS{Value: "INPROGRESS"}}}
}

// TestFaults injects each fault into a claim, through the SDK's HTTP client and through the proxy, and checks
// what the SDK reports, how often it tried (its retry policy applied to the fault) and whether DynamoDB applied it.
func TestFaults(t *testing.T) {
	tests := []struct {
		kind     faultinject.Kind
		attempts int              // SDK attempts with 3 allowed and the fault on every request
		applied  int              // requests the backend received
		check    func(error) bool // the SDK's error, through the RoundTripper
		proxied  func(error) bool // the SDK's error, through the proxy
		ctx      func() (context.Context, context.CancelFunc)
	}{
		{kind: faultinject.Latency, attempts: 1, applied: 1,
			check: func(err error) bool { return err == nil }, proxied: func(err error) bool { return err == nil }},
		{kind: faultinject.Throttle, attempts: 3, applied: 0,
			check:   isA[*types.ProvisionedThroughputExceededException],
			proxied: isA[*types.ProvisionedThroughputExceededException]},
		{kind: faultinject.ServerError, attempts: 3, applied: 0,
			check: isA[*types.InternalServerError], proxied: isA[*types.InternalServerError]},
		{kind: faultinject.ConnReset, attempts: 3, applied: 0,
			check: isReset(faultinject.ConnReset), proxied: isConnectionError},
		{kind: faultinject.ResponseLost, attempts: 3, applied: 3,
			check: isReset(faultinject.ResponseLost), proxied: isConnectionError},
		{kind: faultinject.Timeout, attempts: 1, applied: 0,
			check:   func(err error) bool { return errors.Is(err, context.DeadlineExceeded) },
			proxied: func(err error) bool { return errors.Is(err, context.DeadlineExceeded) },
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 50*time.Millisecond)
			}},
	}
	for _, mode := range []string{"RoundTripper", "Proxy"} {
		for _, tc := range tests {
			t.Run(mode+"/"+tc.kind.String(), func(t *testing.T) {
				be := newBackend(t)
				inj := faultinject.New(func(o *faultinject.Options) { o.IdempotencyTable = idemTable })
				inj.Add(faultinject.Rule{Op: "PutItem", Phase: faultinject.PhaseClaim,
					Fault: faultinject.Fault{Kind: tc.kind, Delay: 2 * time.Millisecond}})
				var client *dynamodb.Client
				check := tc.check
				if mode == "RoundTripper" {
					client = sdkClient(be.URL, inj.Client(nil), 3)
				} else {
					h, err := inj.Proxy(be.URL, nil)
					require.NoError(t, err)
					proxy := httptest.NewServer(h)
					t.Cleanup(proxy.Close)
					client = sdkClient(proxy.URL, nil, 3)
					check = tc.proxied
				}
				ctx, cancel := context.Background(), context.CancelFunc(func() {})
				if tc.ctx != nil {
					ctx, cancel = tc.ctx()
				}
				defer cancel()
				_, err := client.PutItem(ctx, claimInput())
				assert.True(t, check(err), "error %v (%T)", err, err)
				assert.Equal(t, tc.attempts, inj.Count("PutItem", faultinject.PhaseClaim), "attempts")
				assert.Equal(t, tc.applied, be.count(), "requests DynamoDB applied")
				for _, r := range inj.Records() {
					assert.Equal(t, tc.kind, r.Fault)
					assert.Equal(t, tc.applied > 0, r.Forwarded)
				}
			})
		}
	}
}

func isA[T error](err error) bool {
	var target T
	return errors.As(err, &target)
}

func isReset(kind faultinject.Kind) func(error) bool {
	return func(err error) bool {
		var fe *faultinject.Error
		return errors.As(err, &fe) && fe.Kind == kind && errors.Is(err, syscall.ECONNRESET)
	}
}

// isConnectionError: through the proxy the SDK sees a broken connection (the reset, or EOF when the kernel has
// already delivered the close), never an HTTP answer.
func isConnectionError(err error) bool {
	var re interface{ HTTPStatusCode() int }
	if err == nil || (errors.As(err, &re) && re.HTTPStatusCode() != 0) {
		return false
	}
	return (errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "EOF"))
}

func TestThrottleWireFormat(t *testing.T) {
	inj := faultinject.New()
	inj.Add(faultinject.Rule{Fault: faultinject.Fault{Kind: faultinject.Throttle, Message: "slow down"}})
	req := httptest.NewRequest(http.MethodPost, "http://dynamodb.local/", strings.NewReader(`{"TableName":"T"}`))
	req.Header.Set("X-Amz-Target", "DynamoDB_20120810.GetItem")
	resp, err := inj.RoundTripper(nil).RoundTrip(req) // never forwarded
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Equal(t, "application/x-amz-json-1.0", resp.Header.Get("Content-Type"))
	assert.JSONEq(t, `{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"slow down"}`, string(b))
}

func TestWhen(t *testing.T) {
	tests := []struct {
		name string
		when faultinject.When
		want []bool // faulted, per call 1..7
	}{
		{"zero value is always", faultinject.When{}, []bool{true, true, true, true, true, true, true}},
		{"always", faultinject.Always(), []bool{true, true, true, true, true, true, true}},
		{"nth", faultinject.Nth(2), []bool{false, true, false, false, false, false, false}},
		{"first", faultinject.First(2), []bool{true, true, false, false, false, false, false}},
		{"from", faultinject.From(4), []bool{false, false, false, true, true, true, true}},
		{"every third", faultinject.Every(3), []bool{false, false, true, false, false, true, false}},
		{"every one", faultinject.Every(1), []bool{true, true, true, true, true, true, true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			be := newBackend(t)
			inj := faultinject.New()
			// A rule on another phase must not count these calls.
			inj.Add(faultinject.Rule{Phase: faultinject.PhaseRelease, When: faultinject.Nth(1), Fault: faultinject.Fault{Kind: faultinject.ServerError}})
			inj.Add(faultinject.Rule{Op: "PutItem", When: tc.when, Fault: faultinject.Fault{Kind: faultinject.Throttle}})
			client := sdkClient(be.URL, inj.Client(nil), 1)
			var got []bool
			for range tc.want {
				_, err := client.PutItem(context.Background(), claimInput())
				got = append(got, err != nil)
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestFirstMatchingRuleWins(t *testing.T) {
	be := newBackend(t)
	inj := faultinject.New()
	inj.Add(
		faultinject.Rule{Phase: faultinject.PhaseClaim, When: faultinject.Nth(2), Fault: faultinject.Fault{Kind: faultinject.ServerError}},
		faultinject.Rule{Op: "PutItem", Fault: faultinject.Fault{Kind: faultinject.Throttle}},
	)
	client := sdkClient(be.URL, inj.Client(nil), 1)
	var kinds []faultinject.Kind
	for range 3 {
		_, _ = client.PutItem(context.Background(), claimInput())
	}
	for _, r := range inj.Records() {
		kinds = append(kinds, r.Fault)
	}
	assert.Equal(t, []faultinject.Kind{faultinject.Throttle, faultinject.ServerError, faultinject.Throttle}, kinds)

	inj.Clear()
	_, err := client.PutItem(context.Background(), claimInput())
	require.NoError(t, err, "no rules after Clear")
	assert.Equal(t, 4, inj.Count("PutItem", faultinject.PhaseClaim), "records survive Clear")
	assert.Equal(t, 1, be.count())
}

// TestGate: a held request waits for the gate; one whose context ends first never reaches DynamoDB.
func TestGate(t *testing.T) {
	for _, mode := range []string{"RoundTripper", "Proxy"} {
		t.Run(mode, func(t *testing.T) {
			be := newBackend(t)
			inj := faultinject.New()
			gate := make(chan struct{})
			held := make(chan faultinject.Call, 2)
			inj.Add(faultinject.Rule{Phase: faultinject.PhaseClaim, Fault: faultinject.Fault{Kind: faultinject.Latency, Gate: gate, Held: held}})
			client := sdkClient(be.URL, inj.Client(nil), 1)
			if mode == "Proxy" {
				h, err := inj.Proxy(be.URL, nil)
				require.NoError(t, err)
				proxy := httptest.NewServer(h)
				t.Cleanup(proxy.Close)
				client = sdkClient(proxy.URL, nil, 1)
			}

			// Given up while held: not forwarded.
			ctx, cancel := context.WithCancel(context.Background())
			errc := make(chan error, 1)
			go func() { _, err := client.PutItem(ctx, claimInput()); errc <- err }()
			assert.Equal(t, faultinject.PhaseClaim, testwait.Recv(t, held, "the claim to be held").Phase)
			cancel()
			require.ErrorIs(t, testwait.Recv(t, errc, "the given-up claim's error"), context.Canceled)

			// Released: forwarded.
			go func() { _, err := client.PutItem(context.Background(), claimInput()); errc <- err }()
			testwait.Recv(t, held, "the second claim to be held")
			close(gate)
			require.NoError(t, testwait.Recv(t, errc, "the released claim's answer"))

			recs := inj.Records()
			require.Len(t, recs, 2)
			if mode == "Proxy" {
				// The proxy learns of the client's departure from the closed connection; wait for it to settle.
				testwait.Until(t, "the backend to count the released request", func() bool { return be.count() == 1 })
			}
			assert.Equal(t, 1, be.count(), "only the released request reached DynamoDB")
			assert.False(t, inj.Records()[0].Forwarded)
			assert.True(t, inj.Records()[1].Forwarded)
		})
	}
}

// TestResponseLostGate: the answer is held after DynamoDB applied the request, then lost.
func TestResponseLostGate(t *testing.T) {
	be := newBackend(t)
	inj := faultinject.New()
	gate := make(chan struct{})
	held := make(chan faultinject.Call, 1)
	inj.Add(faultinject.Rule{Phase: faultinject.PhaseClaim, Fault: faultinject.Fault{Kind: faultinject.ResponseLost, Gate: gate, Held: held}})
	client := sdkClient(be.URL, inj.Client(nil), 1)
	errc := make(chan error, 1)
	go func() { _, err := client.PutItem(context.Background(), claimInput()); errc <- err }()
	testwait.Recv(t, held, "the answer to be held")
	assert.Equal(t, 1, be.count(), "applied before the answer is held")
	close(gate)
	assert.True(t, isReset(faultinject.ResponseLost)(testwait.Recv(t, errc, "the lost answer's error")))
}

func TestProxyTarget(t *testing.T) {
	for _, target := range []string{"127.0.0.1:8000", "/relative", "http://[::1"} {
		_, err := faultinject.New().Proxy(target, nil)
		assert.Error(t, err, target)
	}
}

func TestStrings(t *testing.T) {
	assert.Equal(t, "atomic-complete", faultinject.PhaseAtomicComplete.String())
	assert.Equal(t, "Phase(99)", faultinject.Phase(99).String())
	assert.Equal(t, "response-lost", faultinject.ResponseLost.String())
	assert.Equal(t, "Kind(99)", faultinject.Kind(99).String())
	e := &faultinject.Error{Kind: faultinject.ConnReset, Call: faultinject.Call{Op: "PutItem", Phase: faultinject.PhaseClaim, Table: "T"}}
	assert.Equal(t, `faultinject: connection reset before PutItem (claim) on "T" reached DynamoDB`, e.Error())
}
