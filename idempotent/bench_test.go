package idempotent_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/memstore"
)

// body1KB is a JSON request body of about 1 KiB, the size the performance targets are stated for.
var body1KB = []byte(`{"amount":2000,"currency":"usd","description":"` + strings.Repeat("x", 900) +
	`","metadata":{"order":"o-123","customer":"c-456","tags":["a","b","c"]}}`)

func BenchmarkFingerprint1KB(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(body1KB)))
	for b.Loop() {
		idempotent.Fingerprint("POST", "/payments", body1KB)
	}
}

func BenchmarkScopeID(b *testing.B) {
	s := idempotent.Scope{Principal: "anonymous", Method: "POST", Route: "/payments"}
	b.ReportAllocs()
	for b.Loop() {
		s.ID("8e03978e-40d5-43e8-bc93-6894a57f9324")
	}
}

// BenchmarkRunFirstRequest measures the engine's overhead for a first request on memstore: claim, handler,
// complete. Each iteration uses a new key.
func BenchmarkRunFirstRequest(b *testing.B) {
	eng := idempotent.New(memstore.New())
	fp := idempotent.Fingerprint("POST", "/payments", body1KB)
	scope := idempotent.Scope{Principal: "anonymous", Method: "POST", Route: "/payments"}
	handler := func(context.Context) (receipt, error) { return receipt{N: 1, Label: "ok"}, nil }
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		req := idempotent.Request{Key: fmt.Sprintf("key-%d", i), Scope: scope, Fingerprint: fp}
		if _, err := idempotent.Run(ctx, eng, req, idempotent.Spec[receipt]{}, handler); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRunReplay measures a duplicate answered from the store, and from the instance's local cache.
func BenchmarkRunReplay(b *testing.B) {
	for _, tc := range []struct {
		name string
		opts []idempotent.Option
	}{
		{"Store", nil},
		{"LocalCache", []idempotent.Option{idempotent.WithLocalCache(1024, 0)}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			eng := idempotent.New(memstore.New(), tc.opts...)
			req := idempotent.Request{Key: "k", Scope: idempotent.Scope{Route: "/payments"}, Fingerprint: "fp"}
			handler := func(context.Context) (receipt, error) { return receipt{N: 1, Label: "ok"}, nil }
			ctx := context.Background()
			if _, err := idempotent.Run(ctx, eng, req, idempotent.Spec[receipt]{}, handler); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := idempotent.Run(ctx, eng, req, idempotent.Spec[receipt]{}, handler); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
