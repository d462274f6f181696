// Command payment is the PaymentFunction Lambda (REST API v1 proxy events). It only wires configuration and
// clients; the logic is in package payment beside it.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/idemkit/idemkit/handlers/internal/awsenv"
	"github.com/idemkit/idemkit/handlers/payment/payment"
)

func main() {
	logger := awsenv.Logger()
	// One client per execution environment, created before the first invocation (init time is not billed
	// against the request's latency budget the same way, and connections are reused across invocations).
	db, err := awsenv.LoadDynamoDB(context.Background())
	if err != nil {
		logger.Error("load AWS configuration", "error", err.Error())
		os.Exit(1)
	}
	svc := payment.New(db, awsenv.Table(awsenv.EnvPaymentsTable, awsenv.DefaultPaymentsTable), func(o *payment.Options) {
		o.Logger = logger
	})
	lambda.Start(svc.Handle)
}
