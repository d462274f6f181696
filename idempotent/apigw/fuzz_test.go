package apigw

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/memstore"
)

// The fuzz targets feed arbitrary events to each adapter and hold it to one rule: every event gets either the
// handler's response or a well-formed problem, never a panic or an error of the adapter's own.

const fuzzMarker = "X-Fuzz-Handler"

func fuzzSeeds(f *testing.F, prefix string) {
	matches, err := filepath.Glob(filepath.Join("testdata", prefix+"-*.json"))
	if err != nil || len(matches) == 0 {
		f.Fatalf("no seed events for %s: %v", prefix, err)
	}
	for _, m := range matches {
		b, err := os.ReadFile(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"headers":{"Idempotency-Key":"a,b"},"multiValueHeaders":{"idempotency-key":["x","y"]}}`))
	f.Add([]byte(`{"body":"eyJhIjoxfQ==","isBase64Encoded":true,"headers":{"idempotency-key":"k"}}`))
	f.Add([]byte(`{"body":"{\"idempotencyKey\":{\"x\":[1]}}","headers":{"idempotency-key":"\u00e9"}}`))
}

func fuzzEngine() *idempotent.Engine {
	return idempotent.New(memstore.New(), idempotent.WithDisabled(false),
		idempotent.WithLogger(slog.New(slog.DiscardHandler)))
}

func checkFuzzResponse(t *testing.T, r response, err error) {
	if err != nil {
		t.Fatalf("adapter returned an error: %v", err)
	}
	if r.Headers[ReplayedHeader] != "true" && r.Headers[ReplayedHeader] != "false" {
		t.Fatalf("missing %s header: %v", ReplayedHeader, r.Headers)
	}
	if r.Headers[fuzzMarker] == "yes" {
		return
	}
	if r.Headers["Content-Type"] != ProblemContentType {
		t.Fatalf("neither the handler's response nor a problem: %+v", r)
	}
	var doc struct {
		Type   string `json:"type"`
		Title  string `json:"title"`
		Status int    `json:"status"`
		Detail string `json:"detail"`
	}
	if err := json.Unmarshal([]byte(r.Body), &doc); err != nil {
		t.Fatalf("problem is not JSON: %v: %s", err, r.Body)
	}
	if doc.Type == "" || doc.Title == "" || doc.Detail == "" || doc.Status != r.StatusCode {
		t.Fatalf("incomplete problem: %s", r.Body)
	}
	switch doc.Status {
	case http.StatusBadRequest, http.StatusConflict, http.StatusUnprocessableEntity:
	default:
		t.Fatalf("unexpected problem status %d: %s", doc.Status, r.Body)
	}
}

func fuzzHandlerResponse() response {
	return response{StatusCode: 201, Headers: map[string]string{fuzzMarker: "yes"}, Body: "{}"}
}

func FuzzREST(f *testing.F) {
	fuzzSeeds(f, "rest")
	e := fuzzEngine()
	hdr := REST(e, func(context.Context, events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
		return toREST(fuzzHandlerResponse()), nil
	})
	field := REST(e, func(context.Context, events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
		return toREST(fuzzHandlerResponse()), nil
	}, WithKeyField("idempotencyKey"), WithPayloadFields("amount", "data.x"), WithRoute("/field"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var ev events.APIGatewayProxyRequest
		if json.Unmarshal(raw, &ev) != nil {
			return
		}
		for _, h := range []func(context.Context, events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error){hdr, field} {
			r, err := h(context.Background(), ev)
			checkFuzzResponse(t, fromREST(r), err)
		}
	})
}

func FuzzHTTP(f *testing.F) {
	fuzzSeeds(f, "http")
	e := fuzzEngine()
	hdr := HTTP(e, func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		return toHTTP(fuzzHandlerResponse()), nil
	})
	field := HTTP(e, func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		return toHTTP(fuzzHandlerResponse()), nil
	}, WithKeyField("idempotencyKey"), WithKeyOptional())
	f.Fuzz(func(t *testing.T, raw []byte) {
		var ev events.APIGatewayV2HTTPRequest
		if json.Unmarshal(raw, &ev) != nil {
			return
		}
		for _, h := range []func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error){hdr, field} {
			r, err := h(context.Background(), ev)
			checkFuzzResponse(t, fromHTTP(r), err)
		}
	})
}

func FuzzFunctionURL(f *testing.F) {
	fuzzSeeds(f, "url")
	e := fuzzEngine()
	h := FunctionURL(e, func(context.Context, events.LambdaFunctionURLRequest) (events.LambdaFunctionURLResponse, error) {
		return toFunctionURL(fuzzHandlerResponse()), nil
	})
	f.Fuzz(func(t *testing.T, raw []byte) {
		var ev events.LambdaFunctionURLRequest
		if json.Unmarshal(raw, &ev) != nil {
			return
		}
		r, err := h(context.Background(), ev)
		checkFuzzResponse(t, fromFunctionURL(r), err)
	})
}
