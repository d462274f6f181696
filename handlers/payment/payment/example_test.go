package payment_test

import (
	"context"
	"fmt"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/idemkit/idemkit/handlers/payment/payment"
	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/apigw"
	"github.com/idemkit/idemkit/idempotent/dynamostore"
)

// The service behind the idempotency layer: the payment ID derives from the engine's scope ID, and the payment
// item commits in the same transaction as the COMPLETED idempotency record.
func Example_withIdempotency() {
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		panic(err)
	}
	db := dynamodb.NewFromConfig(cfg)
	direct := payment.DirectCommitter{DB: db}
	svc := payment.New(db, "PaymentsTable", func(o *payment.Options) {
		o.ScopeID = func(ctx context.Context) (string, bool) {
			inv, ok := idempotent.FromContext(ctx)
			return inv.ID, ok
		}
		o.Committer = payment.CommitterFunc(func(ctx context.Context, w types.TransactWriteItem) error {
			if idempotent.AddEffect(ctx, w) {
				return nil // written with the completed record
			}
			return direct.Commit(ctx, w) // no idempotent execution (e.g. the engine disabled)
		})
	})
	engine := idempotent.New(dynamostore.New(db, "IdempotencyTable"))
	lambda.Start(apigw.REST(engine, svc.Handle))
}

func ExampleDetectBrand() {
	for _, n := range []string{"4242424242424242", "5555555555554444", "378282246310005", "6011111111111117"} {
		fmt.Println(payment.DetectBrand(n), payment.Luhn(n))
	}
	// Output:
	// visa true
	// mastercard true
	// amex true
	// discover true
}

func ExamplePaymentID() {
	id := payment.PaymentID("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")
	fmt.Println(len(id), payment.ValidPaymentID(id))
	// Output: 30 true
}
