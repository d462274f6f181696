// Command user is the UserFunction Lambda (REST API v1 proxy events). It only wires configuration and clients;
// the logic is in package user beside it.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/idemkit/idemkit/handlers/internal/awsenv"
	"github.com/idemkit/idemkit/handlers/user/user"
)

func main() {
	logger := awsenv.Logger()
	db, err := awsenv.LoadDynamoDB(context.Background())
	if err != nil {
		logger.Error("load AWS configuration", "error", err.Error())
		os.Exit(1)
	}
	svc := user.New(db, awsenv.Table(awsenv.EnvUsersTable, awsenv.DefaultUsersTable), func(o *user.Options) {
		o.Logger = logger
	})
	lambda.Start(svc.Handle)
}
