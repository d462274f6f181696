// Command user is the UserFunction Lambda (REST API v1 proxy events). It only wires configuration and clients;
// the logic is in package user beside it.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/idemkit/idemkit/handlers/internal/awsenv"
	"github.com/idemkit/idemkit/handlers/user/user"
	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/apigw"
)

func main() {
	logger := awsenv.Logger()
	db, err := awsenv.LoadDynamoDB(context.Background())
	if err != nil {
		logger.Error("load AWS configuration", "error", err.Error())
		os.Exit(1)
	}
	svc := user.New(db, awsenv.MustTable(logger, awsenv.EnvUsersTable, awsenv.DefaultUsersTable), func(o *user.Options) {
		o.Logger = logger
		// With a key, the user id derives from it, so a retry after a lost record returns the same user.
		o.ScopeID = func(ctx context.Context) (string, bool) {
			inv, ok := idempotent.FromContext(ctx)
			return inv.ID, ok
		}
		// The registration's writes commit in the idempotency record's transaction.
		o.Effect = func(ctx context.Context, w types.TransactWriteItem) bool { return idempotent.AddEffect(ctx, w) }
	})
	// The key is optional on POST /users: uniqueness of the e-mail holds with or without it. The registration's
	// writes are the handler's only side effects, so with a key the claim merges into them: one DynamoDB call.
	lambda.Start(apigw.REST(awsenv.Engine(db, logger), svc.Handle, apigw.WithKeyOptional(), apigw.WithMergedClaim()))
}
