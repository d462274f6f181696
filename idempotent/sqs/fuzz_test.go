package sqs

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/memstore"
)

// FuzzBatch holds Batch to its accounting on arbitrary events: it never panics or fails the invocation, reports
// only ids of the batch, and reports every message whose handler ran and failed.
func FuzzBatch(f *testing.F) {
	for _, name := range []string{"standard-batch.json", "fifo-batch.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"Records":[{"messageId":"","body":"{\"orderId\":{}}"},{"messageId":"a\u0000","body":"x"}]}`))
	e := idempotent.New(memstore.New(), idempotent.WithDisabled(false), idempotent.WithLogger(slog.New(slog.DiscardHandler)))
	quiet := WithLogger(slog.New(slog.DiscardHandler))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var ev events.SQSEvent
		if json.Unmarshal(raw, &ev) != nil {
			return
		}
		failedRun := map[string]bool{}
		h := func(_ context.Context, m events.SQSMessage) error {
			if len(m.Body)%3 == 0 {
				failedRun[m.MessageId] = true
				return context.DeadlineExceeded
			}
			return nil
		}
		for _, opts := range [][]Option{{quiet}, {quiet, WithKeyField("orderId"), WithSkipGroupOnError()}} {
			clear(failedRun)
			resp, err := Batch(e, h, opts...)(context.Background(), ev)
			if err != nil {
				t.Fatal(err)
			}
			ids := map[string]bool{}
			for _, m := range ev.Records {
				ids[m.MessageId] = true
			}
			reported := map[string]bool{}
			for _, f := range resp.BatchItemFailures {
				if !ids[f.ItemIdentifier] {
					t.Fatalf("reported %q, not in the batch", f.ItemIdentifier)
				}
				reported[f.ItemIdentifier] = true
			}
			for id := range failedRun {
				if !reported[id] {
					t.Fatalf("handler failed for %q but it was not reported", id)
				}
			}
		}
	})
}
