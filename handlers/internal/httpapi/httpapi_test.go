package httpapi_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/handlers/internal/httpapi"
)

func TestProblemResponse(t *testing.T) {
	p := httpapi.Problem{
		Type:       httpapi.TypeBase + "card-declined",
		Title:      "Card declined",
		Status:     http.StatusPaymentRequired,
		Detail:     "The card was declined.",
		Extensions: map[string]any{"decline_code": "generic_decline", "status": 999, "type": "overridden?"},
		Headers:    map[string]string{"Retry-After": "3", "Content-Type": "text/plain"},
	}
	resp := p.Response()
	assert.Equal(t, 402, resp.StatusCode)
	assert.Equal(t, "application/problem+json", resp.Headers["Content-Type"], "Content-Type cannot be overridden")
	assert.Equal(t, "3", resp.Headers["Retry-After"])
	assert.JSONEq(t, `{"type":"`+httpapi.TypeBase+`card-declined","title":"Card declined","status":402,
		"detail":"The card was declined.","decline_code":"generic_decline"}`, resp.Body,
		"extensions cannot override the standard members")
}

func TestProblemDefaults(t *testing.T) {
	resp := httpapi.NotFound("").Response()
	assert.JSONEq(t, `{"type":"about:blank","title":"Not Found","status":404}`, resp.Body)

	resp = httpapi.Validation([]httpapi.FieldError{{Field: "a", Message: "is required"}}).Response()
	assert.JSONEq(t, `{"type":"`+httpapi.TypeBase+`validation-error","title":"Your request is not valid","status":400,
		"detail":"The request body has invalid fields; see errors.","errors":[{"field":"a","message":"is required"}]}`, resp.Body)

	resp = httpapi.Unavailable(0).Response()
	assert.Equal(t, 503, resp.StatusCode)
	assert.Equal(t, "1", resp.Headers["Retry-After"], "at least one second")

	resp = httpapi.Internal().Response()
	assert.Equal(t, 500, resp.StatusCode)
	assert.Contains(t, resp.Body, "could not complete")
}

func TestJSONAndCreated(t *testing.T) {
	resp := httpapi.Created("/things/1", map[string]int{"n": 1})
	assert.Equal(t, 201, resp.StatusCode)
	assert.Equal(t, "/things/1", resp.Headers["Location"])
	assert.Equal(t, "application/json", resp.Headers["Content-Type"])
	assert.JSONEq(t, `{"n":1}`, resp.Body)

	resp = httpapi.JSON(200, func() {}, nil) // cannot be marshalled
	assert.Equal(t, 500, resp.StatusCode)
	assert.Equal(t, "application/problem+json", resp.Headers["Content-Type"])
}

func TestRouter(t *testing.T) {
	var logs bytes.Buffer
	ok := func(context.Context, events.APIGatewayProxyRequest) events.APIGatewayProxyResponse {
		return httpapi.JSON(200, "ok", nil)
	}
	r := httpapi.NewRouter(slog.New(slog.NewJSONHandler(&logs, nil)),
		httpapi.Route{Resource: "/things", Method: "post", Handler: ok},
		httpapi.Route{Resource: "/things", Method: http.MethodGet, Handler: ok},
		httpapi.Route{Resource: "/boom", Method: http.MethodGet, Handler: func(context.Context, events.APIGatewayProxyRequest) events.APIGatewayProxyResponse {
			panic("secret 4242424242424242")
		}},
	)
	do := func(resource, method string) events.APIGatewayProxyResponse {
		resp, err := r.Handle(context.Background(), events.APIGatewayProxyRequest{Resource: resource, HTTPMethod: method, Path: resource})
		require.NoError(t, err)
		return resp
	}
	assert.Equal(t, 200, do("/things", "POST").StatusCode, "methods match case-insensitively")
	assert.Equal(t, 200, do("/things", "get").StatusCode)

	resp := do("/things", http.MethodDelete)
	assert.Equal(t, 405, resp.StatusCode)
	assert.Equal(t, "GET, POST", resp.Headers["Allow"])

	resp = do("/nothing", http.MethodGet)
	assert.Equal(t, 404, resp.StatusCode)
	assert.Equal(t, "application/problem+json", resp.Headers["Content-Type"])
	assert.Contains(t, resp.Body, "GET /nothing", "the path is named")

	resp = do("/cards/4111-1111-1111-1111", http.MethodGet)
	assert.Equal(t, 404, resp.StatusCode)
	assert.Contains(t, resp.Body, "/cards/****-****-****-****", "a card number in the path is masked")
	assert.NotContains(t, resp.Body, "1111")

	resp = do("/boom", http.MethodGet)
	assert.Equal(t, 500, resp.StatusCode)
	assert.NotContains(t, resp.Body, "secret")
	assert.Contains(t, logs.String(), "handler panicked")
	assert.NotContains(t, logs.String(), "4242424242424242", "the panic value is not logged")
}

func TestHeader(t *testing.T) {
	req := events.APIGatewayProxyRequest{
		Headers:           map[string]string{"idempotency-key": "b"},
		MultiValueHeaders: map[string][]string{"Idempotency-Key": {"a", "b"}},
	}
	assert.Equal(t, []string{"a", "b"}, httpapi.Header(req, "IDEMPOTENCY-KEY"), "multi-value wins: it has every value")
	req.MultiValueHeaders = nil
	assert.Equal(t, []string{"b"}, httpapi.Header(req, "Idempotency-Key"))
	assert.Empty(t, httpapi.Header(req, "Other"))
}

func TestObjectGetters(t *testing.T) {
	obj, p := httpapi.ReadObject(`{"s":"x","n":12,"neg":-3,"f":1.5,"e":1e2,"big":99999999999999999999,"nul":null}`, false)
	require.Nil(t, p)

	s, ok := obj.String("s", true)
	assert.True(t, ok)
	assert.Equal(t, "x", s)
	n, ok := obj.Int("n", true)
	assert.True(t, ok)
	assert.Equal(t, int64(12), n)
	n, ok = obj.Int("neg", true)
	assert.True(t, ok)
	assert.Equal(t, int64(-3), n)
	_, ok = obj.Int("f", true)
	assert.False(t, ok)
	_, ok = obj.Int("e", true)
	assert.False(t, ok)
	n, ok = obj.Int("big", true)
	assert.True(t, ok, "out of range is reported by the caller's range rule")
	assert.Greater(t, n, int64(99999999))
	_, ok = obj.String("nul", false)
	assert.False(t, ok)
	assert.False(t, obj.Has("nul"))
	_, ok = obj.String("absent", false)
	assert.False(t, ok)
	obj.Unknown()
	fields := []string{}
	for _, e := range obj.Errors() {
		fields = append(fields, e.Field)
	}
	assert.Equal(t, []string{"f", "e"}, fields, "optional absent members are fine; every member was asked about")
}

func TestReadObjectRejects(t *testing.T) {
	for _, tc := range []struct{ body, detail string }{
		{"", "empty"},
		{"{", "ends before"},
		{"{}{}", "after the object"},
		{"[]", "not an array"},
		{"1", "not a number"},
		{"true", "not a boolean"},
		{`{"a":1,"a":1}`, "more than once"},
		{`{"a":}`, "Malformed JSON at byte offset"},
		{`{"a":1,}`, "Malformed JSON"},
		{`{"a":012}`, "Malformed JSON"},
		{"{\"a\":\"\x00\"}", "Malformed JSON"},
		{"{\"a\":\"caf\xe9\"}", "not valid UTF-8 (byte offset 9)"},
		{"\xef\xbb\xbf{}", "Malformed JSON at byte offset"},             // a BOM is valid UTF-8 but not JSON
		{"{\"a\":\"\xed\xa0\x80\"}", "not valid UTF-8 (byte offset 6)"}, // an encoded surrogate is not UTF-8
		{`{"":"x"}`, "a member name is empty"},
	} {
		t.Run(tc.body, func(t *testing.T) {
			_, p := httpapi.ReadObject(tc.body, false)
			require.NotNil(t, p)
			assert.Equal(t, 400, p.Status)
			assert.Contains(t, p.Detail, tc.detail)
		})
	}
	_, p := httpapi.ReadObject(`{"a":"`+strings.Repeat("x", httpapi.MaxBodyBytes)+`"}`, false)
	require.NotNil(t, p)
	assert.Equal(t, 413, p.Status)

	obj, p := httpapi.ReadObject("eyJhIjoiYiJ9", true) // {"a":"b"}
	require.Nil(t, p)
	s, _ := obj.String("a", true)
	assert.Equal(t, "b", s)
}

func TestProblemMemberOrder(t *testing.T) {
	p := httpapi.Problem{Status: 402, Detail: "d", Extensions: map[string]any{"z": 1, "a": "x"}}
	b, err := p.MarshalJSON()
	require.NoError(t, err)
	assert.Equal(t, `{"type":"about:blank","title":"Payment Required","status":402,"detail":"d","a":"x","z":1}`, string(b))

	_, err = httpapi.Problem{Status: 400, Extensions: map[string]any{"f": func() {}}}.MarshalJSON()
	assert.Error(t, err)
	resp := httpapi.Problem{Status: 400, Extensions: map[string]any{"f": func() {}}}.Response()
	assert.JSONEq(t, `{"type":"about:blank","title":"Bad Request","status":400}`, resp.Body, "falls back to the bare members")
}
