// Command idemv2 is the lambdalocal tests' idempotent HTTP API function: idemkit's own apigw.HTTP adapter over an
// in-memory store, so a test can see that the payload 2.0 events lambdalocal builds carry what the adapter reads
// (lower-case Idempotency-Key header, routeKey, method, body) and that its responses come back intact.
package main

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/apigw"
	"github.com/idemkit/idemkit/idempotent/memstore"
)

func main() {
	var runs atomic.Int64
	engine := idempotent.New(memstore.New(), idempotent.WithDisabled(false))
	lambda.Start(apigw.HTTP(engine, func(_ context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		n := runs.Add(1)
		return events.APIGatewayV2HTTPResponse{
			StatusCode: 201,
			Headers:    map[string]string{"Content-Type": "application/json"},
			Body:       fmt.Sprintf(`{"run":%d,"body":%q}`, n, ev.Body),
		}, nil
	}))
}
