package apigw

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// This file holds one test per case of issue 10 ("no silent wrong replay"), each through REST, HTTP API and
// Function URL events: two requests that a handler reads differently, sent with one key, must never get one
// response. Every case failed before the issue was fixed (the second request got the first one's replay).

// at sends a request to the concrete path and query string of target, under route template route, as each event
// type carries them: REST events with resource, path and the decoded parameter maps, HTTP API events with the
// route key, raw path and raw query string, Function URL events with raw path and raw query string.
func at(route, path, query string) func(ev any) {
	params, err := url.ParseQuery(query)
	if err != nil {
		panic(err)
	}
	single := map[string]string{}
	joined := map[string]string{}
	for k, v := range params {
		single[k] = v[len(v)-1]
		joined[k] = strings.Join(v, ",")
	}
	if len(params) == 0 {
		params, single, joined = nil, nil, nil
	}
	return func(ev any) {
		switch ev := ev.(type) {
		case *events.APIGatewayProxyRequest:
			ev.Resource, ev.RequestContext.ResourcePath, ev.Path, ev.RequestContext.Path = route, route, path, path
			ev.QueryStringParameters, ev.MultiValueQueryStringParameters = single, params
		case *events.APIGatewayV2HTTPRequest:
			ev.RouteKey = ev.RequestContext.HTTP.Method + " " + route
			ev.RequestContext.RouteKey = ev.RouteKey
			ev.RawPath, ev.RequestContext.HTTP.Path = path, path
			ev.RawQueryString, ev.QueryStringParameters = query, joined
		case *events.LambdaFunctionURLRequest:
			ev.RawPath, ev.RequestContext.HTTP.Path = path, path
			ev.RawQueryString, ev.QueryStringParameters = query, joined
		case *http.Request:
			// The route the net driver registers on its ServeMux, in the mux's syntax ({proxy+} is {proxy...}).
			ev.Pattern = strings.ReplaceAll(route, "+}", "...}")
			ev.URL.Path, ev.URL.RawQuery = path, query
		}
	}
}

// soundnessCases are pairs of requests with one key that a handler reads differently. opts configure the
// adapter (Function URLs have no route templates: WithRoute plays the part of one).
var soundnessCases = []struct {
	name        string
	opts        func(k kind) []Option
	first, then input
}{
	// 1. Numbers: a typed field reads these differently (or refuses one of them).
	{name: "NumberExponent", first: input{body: str(`{"amount": 2000, "currency": "usd"}`)},
		then: input{body: str(`{"amount": 2e3, "currency": "usd"}`)}},
	{name: "NumberBeyondDouble", first: input{body: str(`{"account": 9007199254740993}`)},
		then: input{body: str(`{"account": 9007199254740992}`)}},
	{name: "NumberFraction", first: input{body: str(`{"n": 1}`)}, then: input{body: str(`{"n": 1.0}`)}},
	{name: "NumberUnderflow", first: input{body: str(`{"n": 0}`)}, then: input{body: str(`{"n": 1e-400}`)}},
	// 2. Member names equal under case folding: encoding/json's last match wins.
	{name: "CaseFoldedNames", first: input{body: str(`{"amount":1,"AMOUNT":2}`)},
		then: input{body: str(`{"AMOUNT":2,"amount":1}`)}},
	{name: "CaseFoldedSelectedField", opts: func(kind) []Option { return []Option{WithPayloadFields("amount")} },
		first: input{body: str(`{"amount":1,"AMOUNT":2}`)}, then: input{body: str(`{"amount":1}`)}},
	// 3. Path and query under one route template.
	{name: "PathUnderProxyRoute", opts: urlRoute("/hello/{proxy+}"),
		first: input{edit: at("/hello/{proxy+}", "/hello/world", "")}, then: input{edit: at("/hello/{proxy+}", "/hello/mars", "")}},
	{name: "PathParameter", opts: urlRoute("/orders/{id}"),
		first: input{edit: at("/orders/{id}", "/orders/1", "")}, then: input{edit: at("/orders/{id}", "/orders/2", "")}},
	{name: "QueryValue", first: input{edit: at(testRoute, testRoute, "name=me")}, then: input{edit: at(testRoute, testRoute, "name=you")}},
	{name: "QueryMultiValue", first: input{edit: at(testRoute, testRoute, "tag=a&tag=b")}, then: input{edit: at(testRoute, testRoute, "tag=a")}},
	{name: "QueryAbsent", first: input{edit: at(testRoute, testRoute, "dry_run=true")}, then: input{}},
}

// urlRoute gives Function URLs the route template the other event types have.
func urlRoute(route string) func(k kind) []Option {
	return func(k kind) []Option {
		if k.name == urlKind.name {
			return []Option{WithRoute(route)}
		}
		return nil
	}
}

func TestNoSilentWrongReplay(t *testing.T) {
	for _, tc := range soundnessCases {
		for _, k := range frontEnds {
			t.Run(tc.name+"/"+k.name, func(t *testing.T) {
				env := newEnv(t)
				var c counter
				var opts []Option
				if tc.opts != nil {
					opts = tc.opts(k)
				}
				send := k.wrap(env.engine, c.handle, opts...)
				first, err := send(context.Background(), tc.first)
				require.NoError(t, err)
				require.Equal(t, http.StatusCreated, first.StatusCode)
				// The first request again is a replay: the case is about the difference, not about the request.
				again, err := send(context.Background(), tc.first)
				require.NoError(t, err)
				require.Equal(t, "true", again.Headers[ReplayedHeader], "a retry of the first request is a replay")
				r, err := send(context.Background(), tc.then)
				require.NoError(t, err)
				assertProblem(t, r, http.StatusUnprocessableEntity, "payload-mismatch")
				assert.EqualValues(t, 1, c.n.Load())
			})
		}
	}
}

// callerCases are pairs of requests with one key from different callers: each is its own record, so the second
// runs the handler and never gets the first caller's response.
var callerCases = []struct {
	name        string
	kinds       []kind
	first, then input
}{
	// An HTTP API Lambda authorizer with simple responses has no principalId (AWS's sample event): the context is
	// all there is to tell callers apart.
	{name: "LambdaAuthorizerWithoutPrincipalID", kinds: []kind{httpKind},
		first: input{edit: lambdaContext(map[string]any{"user": "alice", "tenant": "acme"})},
		then:  input{edit: lambdaContext(map[string]any{"user": "bob", "tenant": "acme"})}},
	// A Lambda authorizer whose principalId is "anonymous" is not the unauthenticated caller.
	{name: "PrincipalIDAnonymous", kinds: []kind{restKind, httpKind},
		first: input{},
		then:  input{edit: lambdaContext(map[string]any{"principalId": "anonymous"})}},
	// An authorizer with no principal field at all still names a caller, who is not the unauthenticated one.
	{name: "AuthorizerWithoutKnownField", kinds: lambdaKinds,
		first: input{},
		then:  input{edit: lambdaContext(map[string]any{"scope": "orders:write"})}},
	// A principal equal to another source's principal: a Lambda authorizer's principalId spelling an IAM ARN.
	{name: "PrincipalIDSpellingAnARN", kinds: []kind{restKind, httpKind},
		first: input{event: "iam"},
		then:  input{edit: lambdaContext(map[string]any{"principalId": "arn:aws:iam::123456789012:user/alice"})}},
}

// lambdaContext sets the authorizer context of an event: a Lambda authorizer's for REST and HTTP API events, an
// IAM authorizer without a user ARN for Function URLs (the only authorizer they have).
func lambdaContext(ctx map[string]any) func(ev any) {
	return func(ev any) {
		switch ev := ev.(type) {
		case *events.APIGatewayProxyRequest:
			a := map[string]any{"integrationLatency": 12}
			for k, v := range ctx {
				a[k] = v
			}
			ev.RequestContext.Authorizer = a
		case *events.APIGatewayV2HTTPRequest:
			ev.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{Lambda: ctx}
		case *events.LambdaFunctionURLRequest:
			scope, _ := ctx["scope"].(string)
			ev.RequestContext.Authorizer = &events.LambdaFunctionURLRequestContextAuthorizerDescription{
				IAM: &events.LambdaFunctionURLRequestContextAuthorizerIAMDescription{AccountID: "123456789012", CallerID: scope}}
		}
	}
}

func TestCallersNeverShareARecord(t *testing.T) {
	for _, tc := range callerCases {
		for _, k := range tc.kinds {
			t.Run(tc.name+"/"+k.name, func(t *testing.T) {
				env := newEnv(t)
				var c counter
				send := k.wrap(env.engine, c.handle)
				first, err := send(context.Background(), tc.first)
				require.NoError(t, err)
				require.Equal(t, "false", first.Headers[ReplayedHeader])
				r, err := send(context.Background(), tc.then)
				require.NoError(t, err)
				assert.Equal(t, http.StatusCreated, r.StatusCode)
				assert.Equal(t, "false", r.Headers[ReplayedHeader], "another caller's request is never a replay")
				assert.EqualValues(t, 2, c.n.Load())
				// Each caller's retry replays its own response.
				r, err = send(context.Background(), tc.then)
				require.NoError(t, err)
				assert.Equal(t, "true", r.Headers[ReplayedHeader])
				assert.JSONEq(t, `{"id":"pay_1","execution":2}`, r.Body)
			})
		}
	}
}

// TestFunctionsSharingATableNeverShareARecord: two functions with one idempotency table (one per account is common)
// receive the same key, as when an event reaches the wrong function. Each runs its own handler.
func TestFunctionsSharingATableNeverShareARecord(t *testing.T) {
	for _, k := range frontEnds {
		t.Run(k.name, func(t *testing.T) {
			env := newEnv(t)
			var payments, users counter
			t.Setenv("AWS_LAMBDA_FUNCTION_NAME", "PaymentFunction")
			sendPayment := k.wrap(env.engine, payments.handle)
			t.Setenv("AWS_LAMBDA_FUNCTION_NAME", "UserFunction")
			sendUser := k.wrap(env.engine, users.handle)
			_, err := sendPayment(context.Background(), input{})
			require.NoError(t, err)
			r, err := sendUser(context.Background(), input{})
			require.NoError(t, err)
			assert.Equal(t, "false", r.Headers[ReplayedHeader], "the other function's response must not be replayed")
			assert.EqualValues(t, 1, payments.n.Load())
			assert.EqualValues(t, 1, users.n.Load())
			r, err = sendPayment(context.Background(), input{})
			require.NoError(t, err)
			assert.Equal(t, "true", r.Headers[ReplayedHeader])
		})
	}
}

// TestPutAndDeleteWithoutKeyRunStraightThrough: PUT and DELETE are idempotent by HTTP semantics, so without a key
// they run like a safe method; with a key they are recorded like POST.
func TestPutAndDeleteWithoutKeyRunStraightThrough(t *testing.T) {
	for _, k := range frontEnds {
		for _, method := range []string{http.MethodPut, http.MethodDelete, "delete"} {
			t.Run(k.name+"/"+method, func(t *testing.T) {
				env := newEnv(t)
				var c counter
				send := k.wrap(env.engine, c.handle)
				noKey := input{method: method, header: map[string][]string{"Idempotency-Key": nil}}
				for range 2 {
					r, err := send(context.Background(), noKey)
					require.NoError(t, err)
					assert.Equal(t, http.StatusCreated, r.StatusCode)
					assert.Equal(t, "false", r.Headers[ReplayedHeader])
				}
				assert.EqualValues(t, 2, c.n.Load())
				assert.Zero(t, env.store.Len(), "nothing recorded without a key")
				for _, want := range []string{"false", "true"} {
					r, err := send(context.Background(), input{method: method})
					require.NoError(t, err)
					assert.Equal(t, want, r.Headers[ReplayedHeader], "with a key, recorded and replayed")
				}
				assert.EqualValues(t, 3, c.n.Load())
			})
		}
	}
}
