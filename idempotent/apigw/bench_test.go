package apigw_test

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/apigw"
	"github.com/idemkit/idemkit/idempotent/memstore"
)

// benchHeaders is shared by every response, as a handler's constant headers usually are.
var benchHeaders = map[string]string{"Content-Type": "application/json"}

// benchHandler stands for the user's handler: it answers at once, so that what the benchmark measures beside it
// is idemkit's own cost.
func benchHandler(context.Context, events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
	return events.APIGatewayProxyResponse{
		StatusCode: 201,
		Headers:    benchHeaders,
		Body:       `{"id":"pay_3Nf8Kq2LrT","status":"succeeded","amount":4999,"currency":"eur"}`,
	}, nil
}

type restHandler = func(context.Context, events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error)

// perOp is what one sub-benchmark measured, kept so that the next one can report the difference.
type perOp struct {
	ns, allocs float64
}

// keyRing is how many keys a first-request benchmark cycles through. With a retention of a millisecond, a key's
// record has expired by the time the key comes round again (4096 requests take longer than that), so every
// request is a first request while the store stays the size of a warm instance's instead of growing with b.N.
const keyRing = 4096

var ringKeys = func() []string {
	keys := make([]string, keyRing)
	for i := range keys {
		keys[i] = "bench-key-" + strconv.Itoa(i)
	}
	return keys
}()

// measure runs h on ev in b.Loop. With newKey every iteration carries the next key of the ring (a first request);
// otherwise the event's key repeats. The key is set the same way for the bare and the wrapped handler, so the
// harness's own cost cancels out of their difference. check judges each response.
func measure(b *testing.B, h restHandler, ev events.APIGatewayProxyRequest, newKey bool, check func(events.APIGatewayProxyResponse) bool) perOp {
	b.Helper()
	ctx := context.Background()
	ev.Headers = cloneMap(ev.Headers)
	ev.MultiValueHeaders = cloneMap(ev.MultiValueHeaders)
	multi := []string{ev.Headers[apigw.DefaultKeyHeader]}
	ev.MultiValueHeaders[apigw.DefaultKeyHeader] = multi
	i := 0
	var before, after runtime.MemStats
	b.ReportAllocs()
	runtime.ReadMemStats(&before)
	for b.Loop() {
		if newKey {
			k := ringKeys[i%keyRing]
			i++
			ev.Headers[apigw.DefaultKeyHeader] = k
			multi[0] = k
		}
		resp, err := h(ctx, ev)
		if err != nil || !check(resp) {
			b.Fatalf("status %d, headers %v, error %v: %s", resp.StatusCode, resp.Headers, err, resp.Body)
		}
	}
	runtime.ReadMemStats(&after)
	n := float64(b.N)
	return perOp{ns: float64(b.Elapsed().Nanoseconds()) / n, allocs: float64(after.Mallocs-before.Mallocs) / n}
}

func cloneMap[V any](m map[string]V) map[string]V {
	c := make(map[string]V, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func loadREST(b *testing.B, name string) events.APIGatewayProxyRequest {
	b.Helper()
	raw, err := os.ReadFile("testdata/" + name)
	if err != nil {
		b.Fatal(err)
	}
	var ev events.APIGatewayProxyRequest
	if err := json.Unmarshal(raw, &ev); err != nil {
		b.Fatal(err)
	}
	return ev
}

// BenchmarkREST1KB measures what apigw.REST and the engine add to a handler on memstore, for a REST API event with
// a 1 KB JSON body (a payment with nested objects): the adapter (headers, principal, fingerprint), the claim, the completion, the response codec
// and the Idempotent-Replayed header. Bare runs the handler alone and Wrapped runs it through apigw.REST on the
// same events; when both ran, Wrapped also reports their difference as overhead-ns/op and overhead-allocs/op
// (the performance targets: <= 5 us and <= 30 allocations for a first request, <= 3 us for a replay from the
// local cache).
func BenchmarkREST1KB(b *testing.B) {
	ev := loadREST(b, "rest-1kb.json")
	if n := len(ev.Body); n < 1000 || n > 1100 {
		b.Fatalf("the event's body has %d bytes, want about 1 KB", n)
	}
	for _, tc := range []struct {
		name     string
		newKey   bool
		opts     []idempotent.Option
		replayed string
	}{
		{"FirstRequest", true, []idempotent.Option{idempotent.WithRetention(time.Millisecond)}, "false"},
		{"CachedReplay", false, []idempotent.Option{idempotent.WithLocalCache(1024, 0)}, "true"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var bare *perOp
			b.Run("Bare", func(b *testing.B) {
				m := measure(b, benchHandler, ev, tc.newKey, func(r events.APIGatewayProxyResponse) bool { return r.StatusCode == 201 })
				bare = &m
			})
			b.Run("Wrapped", func(b *testing.B) {
				opts := append([]idempotent.Option{idempotent.WithLogger(idempotent.NewLogger(io.Discard))}, tc.opts...)
				h := apigw.REST(idempotent.New(memstore.New(), opts...), benchHandler)
				if !tc.newKey {
					// The first request records the response; every iteration then replays it.
					if resp, err := h(context.Background(), ev); err != nil || resp.StatusCode != 201 {
						b.Fatalf("first request: status %d, error %v", resp.StatusCode, err)
					}
				}
				m := measure(b, h, ev, tc.newKey, func(r events.APIGatewayProxyResponse) bool {
					return r.StatusCode == 201 && r.Headers[apigw.ReplayedHeader] == tc.replayed
				})
				if bare != nil {
					b.ReportMetric(m.ns-bare.ns, "overhead-ns/op")
					b.ReportMetric(m.allocs-bare.allocs, "overhead-allocs/op")
				}
			})
		})
	}
}
