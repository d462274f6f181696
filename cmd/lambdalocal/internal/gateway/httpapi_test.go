package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/cmd/lambdalocal/internal/gateway"
	"github.com/idemkit/idemkit/cmd/lambdalocal/internal/runtimeapi"
)

func TestNewHTTPEventGolden(t *testing.T) {
	r, body := readRequest(t, "post-order-v2.http")
	route := &gateway.Route{Path: "/orders/{id}", Method: "POST", Function: "OrdersFunction", HTTPAPI: true}
	ev := gateway.NewHTTPEvent(r, body, gateway.RequestInfo{
		Route: route, PathParameters: map[string]string{"id": "o/1"}, RequestID: "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
		Time: fixedTime,
	})
	got, err := json.Marshal(ev)
	require.NoError(t, err)
	want, err := os.ReadFile(filepath.Join("testdata", "requests", "post-order-v2.json"))
	require.NoError(t, err)
	assert.JSONEq(t, string(want), string(got))
	// The SDK's own type reads it back whole: what a Go handler on an HTTP API receives.
	var back events.APIGatewayV2HTTPRequest
	require.NoError(t, json.Unmarshal(got, &back))
	assert.Equal(t, ev, back)
}

func TestNewHTTPEventRouteKeyAndBody(t *testing.T) {
	for _, tc := range []struct {
		name, path, method, contentType, body string
		wantRouteKey                          string
		wantBase64                            bool
	}{
		{"route", "/orders", "POST", "application/json", `{"a":1}`, "POST /orders", false},
		{"any method", "/orders/{proxy+}", "ANY", "text/plain; charset=utf-8", "hi", "ANY /orders/{proxy+}", false},
		{"default route", gateway.DefaultRoute, "ANY", "application/problem+json", `{}`, "$default", false},
		{"form post is base64", "/orders", "POST", "application/x-www-form-urlencoded", "a=1", "POST /orders", true},
		{"binary type", "/orders", "POST", "image/png", "png", "POST /orders", true},
		{"no type, UTF-8", "/orders", "POST", "", "plain", "POST /orders", false},
		{"no type, not UTF-8", "/orders", "POST", "", "\xff\xfe", "POST /orders", true},
		{"JSON that is not UTF-8", "/orders", "POST", "application/json", "\xff", "POST /orders", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := http.NewRequest("POST", "http://127.0.0.1:3000/orders/x", strings.NewReader(tc.body))
			require.NoError(t, err)
			if tc.contentType != "" {
				r.Header.Set("Content-Type", tc.contentType)
			}
			ev := gateway.NewHTTPEvent(r, []byte(tc.body), gateway.RequestInfo{
				Route: &gateway.Route{Path: tc.path, Method: tc.method, HTTPAPI: true}, Time: fixedTime,
			})
			assert.Equal(t, tc.wantRouteKey, ev.RouteKey)
			assert.Equal(t, tc.wantRouteKey, ev.RequestContext.RouteKey)
			assert.Equal(t, tc.wantBase64, ev.IsBase64Encoded)
			if !tc.wantBase64 {
				assert.Equal(t, tc.body, ev.Body)
			}
			assert.Empty(t, ev.Cookies)
			assert.Nil(t, ev.QueryStringParameters)
		})
	}
}

func TestParseHTTPResponse(t *testing.T) {
	for _, tc := range []struct {
		name       string
		payload    string
		wantStatus int
		wantBody   string
		wantHeader http.Header
	}{
		{"structured", `{"statusCode":201,"headers":{"Location":"/orders/1","X-Two":"a,b"},"body":"{\"id\":1}"}`,
			201, `{"id":1}`, http.Header{"Location": {"/orders/1"}, "X-Two": {"a,b"}, "Content-Type": {"application/json"}}},
		{"cookies become Set-Cookie headers", `{"statusCode":200,"cookies":["a=1; Path=/","b=2"],"headers":{"Content-Type":"text/plain"},"body":"ok"}`,
			200, "ok", http.Header{"Set-Cookie": {"a=1; Path=/", "b=2"}, "Content-Type": {"text/plain"}}},
		{"base64 body", `{"statusCode":200,"body":"aGk=","isBase64Encoded":true,"headers":{"Content-Type":"application/octet-stream"}}`,
			200, "hi", http.Header{"Content-Type": {"application/octet-stream"}}},
		{"multiValueHeaders are not format 2.0", `{"statusCode":204,"multiValueHeaders":{"X-A":["1"]}}`,
			204, "", http.Header{"Content-Type": {"application/json"}}},
		{"framing headers dropped", `{"statusCode":200,"headers":{"Content-Length":"99","Transfer-Encoding":"chunked"},"body":"x"}`,
			200, "x", http.Header{"Content-Type": {"application/json"}}},
		// Without statusCode, API Gateway assumes 200, application/json, and the whole result as the body.
		{"object without statusCode", `{"id": 1, "body": "not a field here"}`,
			200, `{"id": 1, "body": "not a field here"}`, http.Header{"Content-Type": {"application/json"}}},
		{"string result", ` "hello" `, 200, `"hello"`, http.Header{"Content-Type": {"application/json"}}},
		{"array result", `[1,2]`, 200, `[1,2]`, http.Header{"Content-Type": {"application/json"}}},
		{"null statusCode", `{"statusCode":null,"a":1}`, 200, `{"statusCode":null,"a":1}`, http.Header{"Content-Type": {"application/json"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := gateway.ParseHTTPResponse([]byte(tc.payload))
			require.NoError(t, err)
			assert.Equal(t, tc.wantStatus, resp.StatusCode)
			assert.Equal(t, tc.wantBody, string(resp.Body))
			assert.Equal(t, tc.wantHeader, resp.Header)
		})
	}
	for _, tc := range []struct{ name, payload, want string }{
		{"not JSON", `hello`, "not JSON"},
		{"two values", `{} {}`, "more than one JSON value"},
		{"status out of range", `{"statusCode":600}`, "statusCode 600"},
		{"status not an integer", `{"statusCode":200.5}`, "statusCode 200.5"},
		{"status below 100", `{"statusCode":99}`, "statusCode 99"},
		{"header not a string", `{"statusCode":200,"headers":{"X":1}}`, "malformed"},
		{"bad base64", `{"statusCode":200,"body":"%%%","isBase64Encoded":true}`, "not valid base64"},
	} {
		t.Run("malformed/"+tc.name, func(t *testing.T) {
			_, err := gateway.ParseHTTPResponse([]byte(tc.payload))
			require.ErrorIs(t, err, gateway.ErrMalformedResponse)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// newHTTPGateway serves an HTTP API: a 2.0 route, a 1.0 route and, with withDefault, a $default route.
func newHTTPGateway(t *testing.T, fn invokerFunc, extra ...gateway.Route) string {
	t.Helper()
	routes := append([]gateway.Route{
		{Path: "/orders/{id}", Method: "POST", Function: "Fn", HTTPAPI: true, Payload: "2.0"},
		{Path: "/legacy", Method: "GET", Function: "Fn", HTTPAPI: true, Payload: "1.0"},
	}, extra...)
	router, err := gateway.NewRouter(routes)
	require.NoError(t, err)
	srv := newServer(t, &gateway.Gateway{
		Router: router, Functions: map[string]gateway.Invoker{"Fn": fn}, IntegrationTimeout: 300 * time.Millisecond, Log: &syncBuf{},
	})
	return srv
}

func newServer(t *testing.T, g *gateway.Gateway) string {
	t.Helper()
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestGatewayHTTPAPI(t *testing.T) {
	t.Run("payload 2.0 in, structured response out", func(t *testing.T) {
		var got events.APIGatewayV2HTTPRequest
		url := newHTTPGateway(t, func(_ context.Context, payload []byte, _ runtimeapi.InvokeOptions) (*runtimeapi.Result, error) {
			require.NoError(t, json.Unmarshal(payload, &got))
			return &runtimeapi.Result{Payload: []byte(`{"statusCode":201,"cookies":["s=1","t=2"],"body":"made"}`)}, nil
		})
		req, _ := http.NewRequest(http.MethodPost, url+"/orders/7?x=1&x=2", strings.NewReader(`{}`))
		req.Header.Set("Idempotency-Key", "k1")
		req.Header.Add("Cookie", "a=b; c=d")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, 201, resp.StatusCode)
		assert.Equal(t, []string{"s=1", "t=2"}, resp.Header.Values("Set-Cookie"))
		assert.Equal(t, "2.0", got.Version)
		assert.Equal(t, "POST /orders/{id}", got.RouteKey)
		assert.Equal(t, "k1", got.Headers["idempotency-key"])
		assert.Equal(t, []string{"a=b", "c=d"}, got.Cookies)
		assert.NotContains(t, got.Headers, "cookie")
		assert.Equal(t, "1,2", got.QueryStringParameters["x"])
		assert.Equal(t, map[string]string{"id": "7"}, got.PathParameters)
		assert.Equal(t, "$default", got.RequestContext.Stage)
		assert.Equal(t, resp.Header.Get("Apigw-Requestid"), got.RequestContext.RequestID)
	})
	t.Run("payload 1.0 on an HTTP API", func(t *testing.T) {
		var got events.APIGatewayProxyRequest
		url := newHTTPGateway(t, func(_ context.Context, payload []byte, _ runtimeapi.InvokeOptions) (*runtimeapi.Result, error) {
			require.NoError(t, json.Unmarshal(payload, &got))
			return &runtimeapi.Result{Payload: []byte(`{"statusCode":200,"multiValueHeaders":{"X-A":["1","2"]},"body":"v1"}`)}, nil
		})
		resp, body := do(t, http.MethodGet, url+"/legacy", nil)
		assert.Equal(t, 200, resp.StatusCode)
		assert.Equal(t, "v1", body)
		assert.Equal(t, []string{"1", "2"}, resp.Header.Values("X-A"), "1.0 responses keep multiValueHeaders")
		assert.Equal(t, "GET", got.HTTPMethod)
		assert.Equal(t, "/legacy", got.Resource)
		assert.Equal(t, "/legacy", got.RequestContext.Path, "no stage prefix on the $default stage")
	})
	t.Run("result without statusCode", func(t *testing.T) {
		url := newHTTPGateway(t, ok(`{"id":"o1"}`))
		resp, body := do(t, http.MethodPost, url+"/orders/1", nil)
		assert.Equal(t, 200, resp.StatusCode)
		assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
		assert.Equal(t, `{"id":"o1"}`, body)
	})
	t.Run("default route takes what nothing else matches", func(t *testing.T) {
		var got events.APIGatewayV2HTTPRequest
		url := newHTTPGateway(t, func(_ context.Context, payload []byte, _ runtimeapi.InvokeOptions) (*runtimeapi.Result, error) {
			require.NoError(t, json.Unmarshal(payload, &got))
			return &runtimeapi.Result{Payload: []byte(`{"statusCode":200}`)}, nil
		}, gateway.Route{Path: gateway.DefaultRoute, Function: "Fn", HTTPAPI: true})
		resp, _ := do(t, http.MethodDelete, url+"/anything/else", nil)
		assert.Equal(t, 200, resp.StatusCode)
		assert.Equal(t, "$default", got.RouteKey)
		assert.Equal(t, "/anything/else", got.RawPath)
		assert.Empty(t, got.PathParameters)
	})
	for _, tc := range []struct {
		name       string
		fn         invokerFunc
		wantStatus int
		wantBody   string
	}{
		{"function error", func(context.Context, []byte, runtimeapi.InvokeOptions) (*runtimeapi.Result, error) {
			return &runtimeapi.Result{Payload: []byte(`{"errorMessage":"boom"}`), FunctionError: "Unhandled"}, nil
		}, 500, `{"message":"Internal Server Error"}`},
		{"malformed response", ok(`not json`), 500, `{"message":"Internal Server Error"}`},
		{"integration timeout", func(ctx context.Context, _ []byte, _ runtimeapi.InvokeOptions) (*runtimeapi.Result, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}, 503, `{"message":"Service Unavailable"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := newHTTPGateway(t, tc.fn)
			resp, body := do(t, http.MethodPost, url+"/orders/1", strings.NewReader(`{}`))
			assert.Equal(t, tc.wantStatus, resp.StatusCode)
			assert.JSONEq(t, tc.wantBody, body)
		})
	}
	t.Run("event over 6 MB", func(t *testing.T) {
		url := newHTTPGateway(t, ok(`{}`))
		resp, body := do(t, http.MethodPost, url+"/orders/1", strings.NewReader(strings.Repeat("a", runtimeapi.MaxPayload)))
		assert.Equal(t, 413, resp.StatusCode)
		assert.JSONEq(t, `{"message":"Request Entity Too Large"}`, body)
	})
	t.Run("no route: 404 on an HTTP API", func(t *testing.T) {
		url := newHTTPGateway(t, ok(`{}`))
		resp, body := do(t, http.MethodGet, url+"/nope", nil)
		assert.Equal(t, 404, resp.StatusCode)
		assert.JSONEq(t, `{"message":"Not Found"}`, body)
	})
	t.Run("no route: 403 when REST routes are served too", func(t *testing.T) {
		url := newHTTPGateway(t, ok(`{}`), gateway.Route{Path: "/rest", Method: "GET", Function: "Fn"})
		resp, body := do(t, http.MethodGet, url+"/nope", nil)
		assert.Equal(t, 403, resp.StatusCode)
		assert.JSONEq(t, `{"message":"Missing Authentication Token"}`, body)
	})
}

func TestRouterDefaultRoute(t *testing.T) {
	r, err := gateway.NewRouter([]gateway.Route{
		{Path: "/orders/{id}", Method: "GET", Function: "A", HTTPAPI: true},
		{Path: gateway.DefaultRoute, Function: "B", HTTPAPI: true},
	})
	require.NoError(t, err)
	rt, params, ok := r.Match("GET", "/orders/1")
	require.True(t, ok)
	assert.Equal(t, "A", rt.Function, "a declared route wins over $default")
	assert.Equal(t, map[string]string{"id": "1"}, params)
	rt, params, ok = r.Match("POST", "/orders/1")
	require.True(t, ok)
	assert.Equal(t, "B", rt.Function)
	assert.Equal(t, "ANY", rt.Method)
	assert.Nil(t, params)
	routes := r.Routes()
	assert.Equal(t, gateway.DefaultRoute, routes[len(routes)-1].Path, "listed last: it matches last")
	assert.True(t, r.HTTPAPIOnly())

	for _, tc := range []struct {
		name   string
		routes []gateway.Route
		want   string
	}{
		{"two defaults", []gateway.Route{{Path: "$default", Function: "A", HTTPAPI: true}, {Path: "$default", Function: "B", HTTPAPI: true}}, "declared by both A and B"},
		{"default on a REST API", []gateway.Route{{Path: "$default", Method: "ANY", Function: "A"}}, "HTTP APIs only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := gateway.NewRouter(tc.routes)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	for _, tc := range []struct {
		name   string
		routes []gateway.Route
		want   bool
	}{
		{"empty", nil, false},
		{"REST only", []gateway.Route{{Path: "/a", Method: "GET", Function: "A"}}, false},
		{"mixed", []gateway.Route{{Path: "/a", Method: "GET", Function: "A"}, {Path: "/b", Method: "GET", Function: "A", HTTPAPI: true}}, false},
		{"HTTP only", []gateway.Route{{Path: "/b", Method: "GET", Function: "A", HTTPAPI: true}}, true},
	} {
		t.Run("HTTPAPIOnly/"+tc.name, func(t *testing.T) {
			r, err := gateway.NewRouter(tc.routes)
			require.NoError(t, err)
			assert.Equal(t, tc.want, r.HTTPAPIOnly())
		})
	}
}

func TestRoutePayloadV2(t *testing.T) {
	for _, tc := range []struct {
		route gateway.Route
		want  bool
	}{
		{gateway.Route{}, false},
		{gateway.Route{Payload: "2.0"}, false},
		{gateway.Route{HTTPAPI: true}, true},
		{gateway.Route{HTTPAPI: true, Payload: "2.0"}, true},
		{gateway.Route{HTTPAPI: true, Payload: "1.0"}, false},
	} {
		assert.Equal(t, tc.want, tc.route.PayloadV2(), "%+v", tc.route)
	}
}
