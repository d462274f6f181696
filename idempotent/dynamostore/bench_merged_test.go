package dynamostore_test

import (
	"context"
	"encoding/hex"
	"errors"
	"io"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/dynamostore"
	"github.com/idemkit/idemkit/internal/ddblocal/ddbtest"
)

// getHook runs the function in fn, if any, before a GetItem: a holder that completes while a request waits.
type getHook struct {
	*dynamodb.Client
	fn atomic.Pointer[func()]
}

func (h *getHook) GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	if fn := h.fn.Swap(nil); fn != nil {
		(*fn)()
	}
	return h.Client.GetItem(ctx, in, optFns...)
}

// BenchmarkModes compares, on DynamoDB Local, the two ways a first request is recorded (claim first, or the claim
// merged into the completion: Spec.MergeClaim), with and without an effect (an order item written with the
// record), and the cost of a duplicate that waits for a running request (WithWait). calls/op counts DynamoDB
// requests at the SDK's HTTP client.
func BenchmarkModes(b *testing.B) {
	table := newTable(b)
	orders := ddbtest.Table(b, ddbtest.Client(b), "orders")
	client, calls := countingClient(b)
	hooked := &getHook{Client: client}
	store := dynamostore.New(hooked, table)
	ctx := context.Background()
	scope := idempotent.Scope{Principal: "user-1", Method: "POST", Route: "/orders"}
	fp := idempotent.Fingerprint(scope.Method, scope.Route, benchBody)
	newEngine := func(opts ...idempotent.Option) *idempotent.Engine {
		return idempotent.New(store, append([]idempotent.Option{idempotent.WithLogger(idempotent.NewLogger(io.Discard))}, opts...)...)
	}
	handler := func(effect bool) func(context.Context) (resp, error) {
		return func(ctx context.Context) (resp, error) {
			if effect {
				inv, _ := idempotent.FromContext(ctx)
				ok := dynamostore.Put(ctx, &types.Put{TableName: aws.String(orders), Item: map[string]types.AttributeValue{
					"id": &types.AttributeValueMemberS{Value: "ord_" + inv.ID[:24]},
				}, ConditionExpression: aws.String("attribute_not_exists(id)")})
				if !ok {
					return resp{}, errors.New("effect refused")
				}
			}
			return benchResp, nil
		}
	}
	request := func(e *idempotent.Engine, key string, body []byte, merged, effect bool) (idempotent.Result[resp], error) {
		req := idempotent.Request{Key: key, Scope: scope, Fingerprint: idempotent.Fingerprint(scope.Method, scope.Route, body)}
		return idempotent.Run(ctx, e, req, idempotent.Spec[resp]{MergeClaim: merged}, handler(effect))
	}
	// prefix makes the keys of one run of a benchmark function unique: the framework runs it several times.
	prefix := func() string { return hex.EncodeToString([]byte(time.Now().Format(time.RFC3339Nano))) + "-" }

	for _, mode := range []struct {
		name   string
		merged bool
	}{{"ClaimFirst", false}, {"Merged", true}} {
		for _, effect := range []bool{false, true} {
			name := mode.name + "/FirstRequest"
			if effect {
				name += "WithEffect"
			}
			b.Run(name, func(b *testing.B) {
				e := newEngine()
				prefix := prefix()
				i := 0
				b.ReportAllocs()
				calls.take()
				for b.Loop() {
					i++
					res, err := request(e, prefix+name+strconv.Itoa(i), benchBody, mode.merged, effect)
					if err != nil || res.Outcome != idempotent.OutcomeExecuted {
						b.Fatalf("outcome %s, error %v", res.Outcome, err)
					}
				}
				b.ReportMetric(float64(total(calls.take()))/float64(b.N), "calls/op")
			})
		}
		b.Run(mode.name+"/Duplicate", func(b *testing.B) {
			e := newEngine()
			key := prefix() + mode.name + "dup"
			if _, err := request(e, key, benchBody, mode.merged, true); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			calls.take()
			for b.Loop() {
				res, err := request(e, key, benchBody, mode.merged, true)
				if err != nil || !res.Replayed() {
					b.Fatalf("outcome %s, error %v", res.Outcome, err)
				}
			}
			b.ReportMetric(float64(total(calls.take()))/float64(b.N), "calls/op")
		})
		b.Run(mode.name+"/Mismatch", func(b *testing.B) {
			e := newEngine()
			key := prefix() + mode.name + "mismatch"
			if _, err := request(e, key, benchBody, mode.merged, true); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			calls.take()
			for b.Loop() {
				if _, err := request(e, key, []byte(`{"amount":1}`), mode.merged, true); !errors.Is(err, idempotent.ErrPayloadMismatch) {
					b.Fatalf("error %v", err)
				}
			}
			b.ReportMetric(float64(total(calls.take()))/float64(b.N), "calls/op")
		})
	}

	// A duplicate that meets a running request, which completes just before the duplicate's first read: 409 at
	// once without WithWait, the first request's answer with it (after the first pause of the wait, 10-20 ms). The
	// holder's claim and completion are neither timed nor counted.
	for _, wait := range []bool{false, true} {
		name := "InProgress/NoWait"
		if wait {
			name = "InProgress/Wait"
		}
		b.Run(name, func(b *testing.B) {
			var opts []idempotent.Option
			if wait {
				opts = append(opts, idempotent.WithWait(idempotent.DefaultWait))
			}
			e := newEngine(opts...)
			prefix := prefix()
			i := 0
			b.ReportAllocs()
			var holderCalls int
			calls.take()
			for b.Loop() {
				i++
				key := prefix + name + strconv.Itoa(i)
				b.StopTimer()
				now := time.Now()
				held := idempotent.Record{ID: scope.ID(key), Fingerprint: fp, Owner: "holder" + strconv.Itoa(i),
					LeaseEnd: now.Add(time.Minute), ExpiresAt: now.Add(time.Hour)}
				if _, err := store.Claim(ctx, idempotent.Claim{Record: held, Now: now}); err != nil {
					b.Fatal(err)
				}
				done := held
				done.Status, done.Response = idempotent.StatusCompleted, []byte(`{"status":201,"body":"first"}`)
				complete := func() {
					// The engine reads on the benchmark's goroutine: the holder's completion is not timed.
					b.StopTimer()
					defer b.StartTimer()
					if err := store.Complete(ctx, done, nil); err != nil {
						b.Error(err)
					}
				}
				hooked.fn.Store(&complete)
				holderCalls += 2
				b.StartTimer()
				res, err := request(e, key, benchBody, false, false)
				if wait && (err != nil || !res.Replayed()) {
					b.Fatalf("outcome %s, error %v", res.Outcome, err)
				}
				if !wait && !errors.Is(err, idempotent.ErrInProgress) {
					b.Fatalf("error %v", err)
				}
				b.StopTimer()
				if hooked.fn.Swap(nil) != nil {
					holderCalls-- // the holder did not complete: no read happened
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(total(calls.take())-holderCalls)/float64(b.N), "calls/op")
		})
	}
}
