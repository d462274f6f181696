package apigw

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/httpidem"
)

// netKind is the fourth front end: httpidem's net/http middleware behind a standard ServeMux, on the request an HTTP
// API event describes (method, raw path and query, headers, body). Its repeated headers stay separate, as net/http
// delivers them. The mux is built per request with the handler on the route the request names (testRoute unless an
// edit sets Request.Pattern), so that Request.Pattern is the mux's own.
var netKind = kind{name: "NetHTTP", prefix: "http", wrap: func(e *idempotent.Engine, h testHandler, opts ...Option) func(context.Context, input) (response, error) {
	wrapped := httpidem.Middleware(e, opts...)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			panic(err)
		}
		resp, err := h(r.Context(), string(body))
		if err != nil {
			// A net/http handler has no error to return; the contract for handler errors is the adapters' own.
			panic(err)
		}
		writeNet(w, resp)
	}))
	return func(ctx context.Context, in input) (response, error) {
		var ev events.APIGatewayV2HTTPRequest
		loadEvent(in, "http", &ev)
		body := ev.Body
		if in.body != nil {
			body = *in.body
		}
		// The base64 flag of the events is API Gateway's transport: a net/http request carries the bytes.
		req := httptest.NewRequestWithContext(ctx, ev.RequestContext.HTTP.Method, ev.RawPath, strings.NewReader(body))
		for k, v := range ev.Headers {
			req.Header.Set(k, v)
		}
		for name := range in.header {
			req.Header.Del(name)
		}
		for name, vals := range in.header {
			if vals != nil {
				req.Header[http.CanonicalHeaderKey(name)] = vals
			}
		}
		if in.method != "" {
			req.Method = in.method
		}
		if in.edit != nil {
			in.edit(req)
		}
		pattern := testRoute
		if req.Pattern != "" {
			pattern, req.Pattern = req.Pattern, ""
		}
		mux := http.NewServeMux()
		mux.Handle(pattern, wrapped)
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		return fromNet(rec), nil
	}
}}

// writeNet writes resp as a net/http handler would: its headers, cookies, status and body (decoded from base64).
func writeNet(w http.ResponseWriter, resp response) {
	for k, v := range resp.Headers {
		w.Header().Set(k, v)
	}
	for k, vals := range resp.MultiValueHeaders {
		for _, v := range vals {
			w.Header().Add(k, v)
		}
	}
	for _, c := range resp.Cookies {
		w.Header().Add("Set-Cookie", c)
	}
	w.WriteHeader(resp.StatusCode)
	body := []byte(resp.Body)
	if resp.IsBase64Encoded {
		body, _ = base64.StdEncoding.DecodeString(resp.Body)
	}
	_, _ = w.Write(body)
}

// fromNet reads a recorded net/http response in the form the tests compare: a header with one value in Headers,
// one with several in MultiValueHeaders, the body as it came.
func fromNet(rec *httptest.ResponseRecorder) response {
	r := response{StatusCode: rec.Code, Headers: map[string]string{}, Body: rec.Body.String()}
	for k, v := range rec.Header() {
		if len(v) == 1 {
			r.Headers[k] = v[0]
			continue
		}
		if r.MultiValueHeaders == nil {
			r.MultiValueHeaders = map[string][]string{}
		}
		r.MultiValueHeaders[k] = v
	}
	return r
}

// frontEnds are the four front ends every contract test runs through.
var frontEnds = []kind{restKind, httpKind, urlKind, netKind}

// lambdaKinds are the three API Gateway front ends, for what only they have: handler errors, authorizers, base64
// event bodies.
var lambdaKinds = []kind{restKind, httpKind, urlKind}
