// Package ddblocal starts and stops the official DynamoDB Local (the jar pinned by
// tools/dynamodb-local) for the local runner and for integration tests.
//
// The jar is run straight from the npm package's directory with Java 17+:
//
//	java -Djava.library.path=<dir>/DynamoDBLocal_lib -jar <dir>/DynamoDBLocal.jar \
//	    -inMemory -sharedDb -disableTelemetry -port <port>
//
// -sharedDb makes every client see the same tables whatever its access key and
// region, so a developer's own AWS CLI credentials see what the functions wrote.
// DynamoDB Local binds every interface; it is always reached through 127.0.0.1.
//
//	inst, err := ddblocal.Start(ctx, ddblocal.Options{})
//	if err != nil { ... }
//	defer inst.Stop()
//	client, err := ddblocal.NewClient(ctx, inst.Endpoint())
//
// Tests use the ddbtest subpackage, which shares one instance per test binary.
package ddblocal
