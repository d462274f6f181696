// Command payment is the PaymentFunction Lambda (REST API v1 proxy events). It only wires configuration and
// clients; the logic is in package payment beside it.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/idemkit/idemkit/handlers/internal/awsenv"
	"github.com/idemkit/idemkit/handlers/payment/payment"
	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/apigw"
)

func main() {
	logger := awsenv.Logger()
	// One client per execution environment, created before the first invocation and reused by every one after.
	db, err := awsenv.LoadDynamoDB(context.Background())
	if err != nil {
		logger.Error("load AWS configuration", "error", err.Error())
		os.Exit(1)
	}
	direct := payment.DirectCommitter{DB: db}
	atomic := awsenv.AtomicCompletion()
	// The simulated processor keeps its charges in its own table, shared by every instance, so a charge retried
	// from another instance is recognised as a real processor recognises its idempotency keys.
	processor := payment.NewSimulatedProcessor(func(o *payment.ProcessorOptions) {
		o.Ledger = payment.DynamoLedger{DB: db, Table: awsenv.MustTable(logger, payment.EnvProcessorTable, payment.DefaultProcessorTable)}
	})
	svc := payment.New(db, awsenv.MustTable(logger, awsenv.EnvPaymentsTable, awsenv.DefaultPaymentsTable), func(o *payment.Options) {
		o.Logger = logger
		o.Processor = processor
		// The payment id derives from the scoped idempotency key, so a retry can never create a second payment,
		// and it is the reference the charge carries, so a retry can never charge twice.
		o.ScopeID = func(ctx context.Context) (string, bool) {
			inv, ok := idempotent.FromContext(ctx)
			return inv.ID, ok
		}
		// On DynamoDB the payment item commits in the same transaction as the COMPLETED record: both exist or
		// neither. A Redis store cannot commit it, so there the payment is written directly (conditional on its
		// ID, derived from the key): a retry after a crash is recognised by the processor (same reference), and
		// the service then reads the payment it wrote instead of writing a second one.
		o.Committer = payment.CommitterFunc(func(ctx context.Context, w types.TransactWriteItem) error {
			if atomic && idempotent.AddEffect(ctx, w) {
				return nil
			}
			return direct.Commit(ctx, w) // no atomic completion, or idempotency disabled (IDEMPOTENCY_DISABLED)
		})
	})
	lambda.Start(apigw.REST(awsenv.Engine(db, logger), svc.Handle))
}
