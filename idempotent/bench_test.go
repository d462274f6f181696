package idempotent_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/memstore"
)

// body1KB is a JSON request body of about 1 KiB, the size the performance targets are stated for.
var body1KB = []byte(`{"amount":2000,"currency":"usd","description":"` + strings.Repeat("x", 900) +
	`","metadata":{"order":"o-123","customer":"c-456","tags":["a","b","c"]}}`)

// paymentBody is a realistic 1 KB request body: nested objects whose members are not in canonical order, an
// array of objects, numbers and strings with escapes.
var paymentBody = []byte(`{"amount": 4999, "currency": "eur", "description": "Order 2024-03-12-00042: annual subscription, two add-ons", "customer": {"id": "cus_9f8e7d6c5b4a", "email": "jane.doe@example.com", "name": "Jane Doe", "address": {"line1": "12 Rue de la Paix", "city": "Paris", "postal_code": "75002", "country": "FR"}}, "payment_method": {"type": "card", "card": {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2027}}, "items": [{"sku": "SUB-ANNUAL", "name": "Annual plan", "quantity": 1, "unit_amount": 3999}, {"sku": "ADDON-SEATS", "name": "Extra seats", "quantity": 5, "unit_amount": 150}, {"sku": "ADDON-SUPPORT", "name": "Priority support", "quantity": 1, "unit_amount": 250}], "tax": {"rate": 0.2, "amount": 833, "inclusive": true}, "metadata": {"order_id": "ord_2024031200042", "channel": "web", "campaign": "spring-sale", "referrer": "https://www.example.com/pricing?plan=annual", "note": "Deliver invoice by e-mail; reference PO-7781 on the invoice, please.", "client_ts": "2024-03-12T10:15:29.812Z"}, "capture": true}`)

// BenchmarkFingerprint1KB measures the fingerprint of a 1 KB body: one long string (Flat), and a payment with
// nested objects to reorder (Payment).
func BenchmarkFingerprint1KB(b *testing.B) {
	for _, tc := range []struct {
		name string
		body []byte
	}{{"Flat", body1KB}, {"Payment", paymentBody}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(tc.body)))
			for b.Loop() {
				idempotent.Fingerprint("POST", "/payments", tc.body)
			}
		})
	}
}

// BenchmarkCanonicalJSON measures the canonicaliser alone on the payment body.
func BenchmarkCanonicalJSON(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(paymentBody)))
	for b.Loop() {
		if _, err := idempotent.CanonicalJSON(paymentBody); err != nil {
			b.Fatal(err)
		}
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
// complete. The keys come round every 4096 requests, by which time their records (kept a millisecond) have
// expired: every request is a first request, and the store stays the size of a warm instance's.
func BenchmarkRunFirstRequest(b *testing.B) {
	eng := idempotent.New(memstore.New(), idempotent.WithRetention(time.Millisecond))
	fp := idempotent.Fingerprint("POST", "/payments", body1KB)
	scope := idempotent.Scope{Principal: "anonymous", Method: "POST", Route: "/payments"}
	handler := func(context.Context) (receipt, error) { return receipt{N: 1, Label: "ok"}, nil }
	ctx := context.Background()
	keys := make([]string, 4096)
	for i := range keys {
		keys[i] = fmt.Sprintf("key-%d", i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		req := idempotent.Request{Key: keys[i%len(keys)], Scope: scope, Fingerprint: fp}
		i++
		res, err := idempotent.Run(ctx, eng, req, idempotent.Spec[receipt]{}, handler)
		if err != nil || res.Outcome != idempotent.OutcomeExecuted {
			b.Fatalf("outcome %s, error %v", res.Outcome, err)
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
