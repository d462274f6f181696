package user_test

import (
	"context"
	"fmt"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/idemkit/idemkit/handlers/user/user"
	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/apigw"
	"github.com/idemkit/idemkit/idempotent/dynamostore"
)

// The service behind the idempotency layer, where the key is optional: with a key the user ID derives from the
// scope, without one it is random; e-mail uniqueness holds either way.
func Example_withIdempotency() {
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		panic(err)
	}
	db := dynamodb.NewFromConfig(cfg)
	svc := user.New(db, "UsersTable", func(o *user.Options) {
		o.ScopeID = func(ctx context.Context) (string, bool) {
			inv, ok := idempotent.FromContext(ctx)
			return inv.ID, ok
		}
	})
	engine := idempotent.New(dynamostore.New(db, "IdempotencyTable"))
	lambda.Start(apigw.REST(engine, svc.Handle, apigw.WithKeyOptional()))
}

func ExampleNormalizeEmail() {
	email, _ := user.NormalizeEmail("  Alice@Example.COM ")
	fmt.Println(email)
	_, problem := user.NormalizeEmail("Alice <alice@example.com>")
	fmt.Println(problem)
	// Output:
	// alice@example.com
	// must be an e-mail address such as alice@example.com
}
