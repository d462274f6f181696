// Command echov2 is the lambdalocal tests' HTTP API function: a real lambda.Start bootstrap that takes the
// payload format 2.0 event and echoes what it received, as a user's function behind a SAM HttpApi event would.
package main

import (
	"context"
	"encoding/json"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

func main() { lambda.Start(handle) }

func handle(_ context.Context, ev events.APIGatewayV2HTTPRequest) (any, error) {
	if ev.RawPath == "/v2/plain" {
		// No statusCode: an HTTP API answers 200 with this object as the JSON body.
		return map[string]string{"plain": "yes"}, nil
	}
	body, err := json.Marshal(map[string]any{
		"version":        ev.Version,
		"routeKey":       ev.RouteKey,
		"rawPath":        ev.RawPath,
		"pathParameters": ev.PathParameters,
		"cookies":        ev.Cookies,
		"query":          ev.QueryStringParameters,
		"key":            ev.Headers["idempotency-key"],
		"stage":          ev.RequestContext.Stage,
	})
	if err != nil {
		return nil, err
	}
	return events.APIGatewayV2HTTPResponse{
		StatusCode: 200,
		Headers:    map[string]string{"Content-Type": "application/json"},
		Cookies:    []string{"seen=1; Path=/", "count=2"},
		Body:       string(body),
	}, nil
}
