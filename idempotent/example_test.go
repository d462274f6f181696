package idempotent_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/memstore"
)

type Order struct {
	IdempotencyKey string `json:"idempotencyKey"`
	Item           string `json:"item"`
	Quantity       int    `json:"quantity"`
}

type Confirmation struct {
	OrderID string `json:"orderId"`
}

// Any Lambda handler over your own types becomes idempotent with Wrap. In a function's main, pass the result to
// lambda.Start and use dynamostore instead of memstore.
func Example() {
	engine := idempotent.New(memstore.New())

	placed := 0
	placeOrder := func(ctx context.Context, o Order) (Confirmation, error) {
		placed++
		return Confirmation{OrderID: fmt.Sprintf("order-%d", placed)}, nil
	}
	handler := idempotent.Wrap(engine, idempotent.FieldKey[Order]("idempotencyKey"), placeOrder,
		idempotent.WithName("place-order"))

	ctx := context.Background()
	first, _ := handler(ctx, Order{IdempotencyKey: "a1", Item: "book", Quantity: 1})
	retry, _ := handler(ctx, Order{IdempotencyKey: "a1", Item: "book", Quantity: 1})
	_, err := handler(ctx, Order{IdempotencyKey: "a1", Item: "book", Quantity: 2})

	fmt.Println(first.OrderID, retry.OrderID, placed)
	fmt.Println(errors.Is(err, idempotent.ErrPayloadMismatch))
	// Output:
	// order-1 order-1 1
	// true
}

// Run is the lower-level entry point adapters use: the caller extracts the key, scope and fingerprint itself.
func ExampleRun() {
	engine := idempotent.New(memstore.New())
	body := []byte(`{"amount": 2000, "currency": "usd"}`)
	req := idempotent.Request{
		Key:         "8e03978e-40d5-43e8-bc93-6894a57f9324",
		Scope:       idempotent.Scope{Principal: "anonymous", Method: "POST", Route: "/payments"},
		Fingerprint: idempotent.Fingerprint("POST", "/payments", body),
	}
	charge := func(ctx context.Context) (string, error) { return "charged", nil }

	for range 2 {
		res, err := idempotent.Run(context.Background(), engine, req, idempotent.Spec[string]{}, charge)
		fmt.Println(res.Value, res.Outcome, err)
	}
	// Output:
	// charged executed <nil>
	// charged replayed <nil>
}

// Errors carry what a caller needs to answer: for a running duplicate, how long requests of the route take
// (at least a second, at most the time left of the holder's lease), for Retry-After.
func ExampleInProgressError() {
	engine := idempotent.New(memstore.New())
	req := idempotent.Request{Key: "k", Scope: idempotent.Scope{Route: "slow"}, Fingerprint: "fp"}
	_, _ = idempotent.Run(context.Background(), engine, req, idempotent.Spec[int]{}, func(ctx context.Context) (int, error) {
		_, err := idempotent.Run(ctx, engine, req, idempotent.Spec[int]{}, func(context.Context) (int, error) { return 0, nil })
		var ip *idempotent.InProgressError
		if errors.As(err, &ip) {
			fmt.Println("in progress, retry after", ip.RetryAfter)
		}
		return 1, nil
	})
	// Output:
	// in progress, retry after 1s
}

// With Spec.MergeClaim the handler runs first and the key is claimed and recorded in one store call with its
// effects. Use it only when the handler's every side effect is an effect handed to the store (AddEffect; with
// dynamostore, dynamostore.Put and friends) and it calls nothing outside: a duplicate runs the handler too, and
// only the first one's effects and answer are kept.
func ExampleSpec_mergeClaim() {
	engine := idempotent.New(memstore.New())
	req := idempotent.Request{Key: "k", Scope: idempotent.Scope{Route: "register"}, Fingerprint: "fp"}
	spec := idempotent.Spec[string]{MergeClaim: true}
	for _, name := range []string{"first", "second"} {
		res, err := idempotent.Run(context.Background(), engine, req, spec, func(ctx context.Context) (string, error) {
			// With dynamostore: dynamostore.Put(ctx, &types.Put{...}) hands the write to the merged transaction.
			return name + " run's answer", nil
		})
		fmt.Println(res.Value, res.Outcome, err)
	}
	// Output:
	// first run's answer executed <nil>
	// first run's answer replayed <nil>
}
