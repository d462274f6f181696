package httpidem_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/httpidem"
	"github.com/idemkit/idemkit/idempotent/memstore"
)

// benchHandler stands for the user's handler: it reads the body, as a real one does, and answers at once, so that
// what the benchmark measures beside it is idemkit's own cost.
var benchHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, `{"id":"pay_3Nf8Kq2LrT","status":"succeeded","amount":4999,"currency":"eur"}`)
})

// keyRing is how many keys a first-request benchmark cycles through; with a retention of a millisecond a key's
// record has expired when it comes round again, so every request is a first one and the store stays small (as in
// apigw's REST1KB).
const keyRing = 4096

type perOp struct{ ns, allocs float64 }

// measure serves one request per iteration to h through a ServeMux pattern, built the same way for the bare and
// the wrapped handler so that the harness's cost cancels out of their difference. With newKey each request carries
// the next key of the ring.
func measure(b *testing.B, h http.Handler, body string, newKey bool, replayed string) perOp {
	b.Helper()
	mux := http.NewServeMux()
	mux.Handle("POST /payments", h)
	keys := make([]string, keyRing)
	for i := range keys {
		keys[i] = "bench-key-" + strconv.Itoa(i)
	}
	i := 0
	var before, after runtime.MemStats
	b.ReportAllocs()
	runtime.ReadMemStats(&before)
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/payments", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		k := keys[0]
		if newKey {
			k = keys[i%keyRing]
			i++
		}
		req.Header.Set(httpidem.DefaultKeyHeader, k)
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		if rec.Code != http.StatusCreated || rec.Header().Get(httpidem.ReplayedHeader) != replayed {
			b.Fatalf("status %d, replayed %q: %s", rec.Code, rec.Header().Get(httpidem.ReplayedHeader), rec.Body)
		}
	}
	runtime.ReadMemStats(&after)
	n := float64(b.N)
	return perOp{ns: float64(b.Elapsed().Nanoseconds()) / n, allocs: float64(after.Mallocs-before.Mallocs) / n}
}

// BenchmarkMiddleware1KB measures what the middleware and the engine add to a net/http handler on memstore, for a
// POST with a 1 KB JSON body (the payment body of apigw's REST1KB): reading and handing on the body, the key, the
// fingerprint, the claim, buffering and recording the response, and writing it with Idempotent-Replayed. Bare runs
// the handler alone, Wrapped through the middleware; Wrapped reports their difference as overhead-ns/op and
// overhead-allocs/op, beside apigw's REST1KB figures.
func BenchmarkMiddleware1KB(b *testing.B) {
	raw, err := os.ReadFile("testdata/payment-1kb.json")
	if err != nil {
		b.Fatal(err)
	}
	body := string(raw)
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
				w := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					// The bare handler sets the header the middleware sets, so both write the same response.
					w.Header().Set(httpidem.ReplayedHeader, tc.replayed)
					benchHandler(w, r)
				})
				m := measure(b, w, body, tc.newKey, tc.replayed)
				bare = &m
			})
			b.Run("Wrapped", func(b *testing.B) {
				opts := append([]idempotent.Option{idempotent.WithLogger(idempotent.NewLogger(io.Discard)),
					idempotent.WithDisabled(false)}, tc.opts...)
				h := httpidem.Middleware(idempotent.New(memstore.New(), opts...))(benchHandler)
				if !tc.newKey {
					measureOnce(b, h, body)
				}
				m := measure(b, h, body, tc.newKey, tc.replayed)
				if bare != nil {
					b.ReportMetric(m.ns-bare.ns, "overhead-ns/op")
					b.ReportMetric(m.allocs-bare.allocs, "overhead-allocs/op")
				}
			})
		})
	}
}

// measureOnce sends the first request of a replay benchmark, which records the response every iteration replays.
func measureOnce(b *testing.B, h http.Handler, body string) {
	mux := http.NewServeMux()
	mux.Handle("POST /payments", h)
	req := httptest.NewRequest(http.MethodPost, "/payments", strings.NewReader(body))
	req.Header.Set(httpidem.DefaultKeyHeader, "bench-key-0")
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	if rec.Code != http.StatusCreated {
		b.Fatalf("first request: status %d: %s", rec.Code, rec.Body)
	}
}
