package apigw_test

import (
	"context"
	"fmt"
	"net/http"

	"github.com/aws/aws-lambda-go/events"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/apigw"
	"github.com/idemkit/idemkit/idempotent/memstore"
)

// A REST API handler made idempotent: the second request with the same key gets the recorded response, the
// handler does not run again, and a request reusing the key for another payload is refused.
func ExampleREST() {
	engine := idempotent.New(memstore.New(), idempotent.WithDisabled(false)) // dynamostore in production
	created := 0
	createPayment := func(ctx context.Context, req events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
		created++
		return events.APIGatewayProxyResponse{
			StatusCode: http.StatusCreated,
			Headers:    map[string]string{"Content-Type": "application/json", "Location": "/payments/pay_1"},
			Body:       `{"id":"pay_1","amount":2000}`,
		}, nil
	}
	handler := apigw.REST(engine, createPayment) // lambda.Start(handler) in main

	req := events.APIGatewayProxyRequest{
		Resource:   "/payments",
		Path:       "/payments",
		HTTPMethod: http.MethodPost,
		Headers:    map[string]string{"Idempotency-Key": "order-42"},
		Body:       `{"amount": 2000, "currency": "usd"}`,
	}
	first, _ := handler(context.Background(), req)
	again, _ := handler(context.Background(), req)
	req.Body = `{"amount": 9999, "currency": "usd"}`
	reused, _ := handler(context.Background(), req)

	fmt.Println(first.StatusCode, first.Headers["Idempotent-Replayed"], first.Body)
	fmt.Println(again.StatusCode, again.Headers["Idempotent-Replayed"], again.Body)
	fmt.Println(reused.StatusCode, reused.Headers["Content-Type"])
	fmt.Println("handler runs:", created)
	// Output:
	// 201 false {"id":"pay_1","amount":2000}
	// 201 true {"id":"pay_1","amount":2000}
	// 422 application/problem+json
	// handler runs: 1
}

// An HTTP API whose clients put the key in the JSON body rather than in a header.
func ExampleHTTP() {
	engine := idempotent.New(memstore.New(), idempotent.WithDisabled(false))
	handler := apigw.HTTP(engine,
		func(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
			return events.APIGatewayV2HTTPResponse{StatusCode: http.StatusAccepted, Body: `{"status":"queued"}`}, nil
		},
		apigw.WithKeyField("idempotencyKey"),
		apigw.WithPayloadFields("data"), // the key itself and any other field do not count as payload
	)

	req := events.APIGatewayV2HTTPRequest{
		RouteKey: "POST /jobs",
		RawPath:  "/jobs",
		Body:     `{"idempotencyKey": "job-7", "data": {"report": "monthly"}}`,
	}
	req.RequestContext.HTTP.Method = http.MethodPost
	first, _ := handler(context.Background(), req)
	again, _ := handler(context.Background(), req)
	req.Body = `{"data": {"report": "monthly"}}`
	missing, _ := handler(context.Background(), req)

	fmt.Println(first.StatusCode, first.Headers["Idempotent-Replayed"])
	fmt.Println(again.StatusCode, again.Headers["Idempotent-Replayed"])
	fmt.Println(missing.StatusCode, missing.Headers["Content-Type"])
	// Output:
	// 202 false
	// 202 true
	// 400 application/problem+json
}

// A handler answering its own errors in the same problem+json format as the adapter.
func ExampleProblem() {
	resp := apigw.Problem{
		Type:   "https://api.example.com/problems/validation",
		Title:  "Invalid request",
		Status: http.StatusBadRequest,
		Detail: "The request body has invalid fields.",
		Extensions: map[string]any{
			"errors": []map[string]string{{"field": "amount", "message": "must be between 1 and 99999999"}},
		},
	}.RESTResponse()
	fmt.Println(resp.StatusCode, resp.Headers["Content-Type"])
	fmt.Println(resp.Body)
	// Output:
	// 400 application/problem+json
	// {"type":"https://api.example.com/problems/validation","title":"Invalid request","status":400,"detail":"The request body has invalid fields.","errors":[{"field":"amount","message":"must be between 1 and 99999999"}]}
}

// What tells two requests with one key apart: the concrete path and query under one route template, and number
// spellings a typed field reads differently. PUT and DELETE need no key; with one, they are recorded.
func ExampleREST_whatTheFingerprintCovers() {
	engine := idempotent.New(memstore.New(), idempotent.WithDisabled(false))
	handler := apigw.REST(engine,
		func(ctx context.Context, req events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
			return events.APIGatewayProxyResponse{StatusCode: http.StatusOK, Body: `{"path":"` + req.Path + `"}`}, nil
		})
	send := func(method, path, body string, key string) {
		req := events.APIGatewayProxyRequest{HTTPMethod: method, Resource: "/orders/{id}", Path: path, Body: body,
			Headers: map[string]string{}}
		if key != "" {
			req.Headers["Idempotency-Key"] = key
		}
		resp, _ := handler(context.Background(), req)
		fmt.Println(method, path, body, "->", resp.StatusCode, resp.Headers["Idempotent-Replayed"])
	}
	send("POST", "/orders/1", `{"amount": 2000}`, "k1")
	send("POST", "/orders/1", `{ "amount" : 2000 }`, "k1") // whitespace: a replay
	send("POST", "/orders/2", `{"amount": 2000}`, "k1")    // another path: a mismatch
	send("POST", "/orders/1", `{"amount": 2e3}`, "k1")     // another number spelling: a mismatch
	send("DELETE", "/orders/1", ``, "")                    // no key: straight through
	send("DELETE", "/orders/1", ``, "k2")
	send("DELETE", "/orders/1", ``, "k2") // with a key: recorded and replayed
	// Output:
	// POST /orders/1 {"amount": 2000} -> 200 false
	// POST /orders/1 { "amount" : 2000 } -> 200 true
	// POST /orders/2 {"amount": 2000} -> 422 false
	// POST /orders/1 {"amount": 2e3} -> 422 false
	// DELETE /orders/1  -> 200 false
	// DELETE /orders/1  -> 200 false
	// DELETE /orders/1  -> 200 true
}
