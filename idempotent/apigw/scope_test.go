package apigw

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/idempotent"
)

// scopeOf runs one request through k and returns the scope its handler ran under.
func scopeOf(t *testing.T, k kind, in input, opts ...Option) idempotent.Invocation {
	t.Helper()
	env := newEnv(t)
	var got idempotent.Invocation
	send := k.wrap(env.engine, func(ctx context.Context, _ string) (response, error) {
		got, _ = idempotent.FromContext(ctx)
		return response{StatusCode: 201}, nil
	}, opts...)
	_, err := send(context.Background(), in)
	require.NoError(t, err)
	require.NotEmpty(t, got.ID, "the handler ran under a record")
	return got
}

func TestContextPrincipal(t *testing.T) {
	// AWS's sample HTTP API event with a Lambda authorizer (simple responses): a context, no principalId.
	simple := scopeOf(t, httpKind, input{event: "lambda-simple"}).Scope.Principal
	assert.True(t, strings.HasPrefix(simple, "ctx:"), simple)
	assert.Len(t, simple, len("ctx:")+64)
	assert.Equal(t, simple, scopeOf(t, httpKind, input{event: "lambda-simple"}).Scope.Principal, "stable for one context")
	other := scopeOf(t, httpKind, input{event: "lambda-simple", edit: lambdaContext(map[string]any{"key": "other"})})
	assert.NotEqual(t, simple, other.Scope.Principal)

	// REST: integrationLatency changes on every request and must not change the principal.
	withLatency := func(ms int) func(ev any) {
		return func(ev any) {
			ev.(*events.APIGatewayProxyRequest).RequestContext.Authorizer = map[string]any{"integrationLatency": ms, "tenant": "acme"}
		}
	}
	a := scopeOf(t, restKind, input{edit: withLatency(3)}).Scope.Principal
	assert.True(t, strings.HasPrefix(a, "ctx:"), a)
	assert.Equal(t, a, scopeOf(t, restKind, input{edit: withLatency(250)}).Scope.Principal)
	// integrationLatency alone, or an empty map, is no authorizer.
	for _, authorizer := range []map[string]any{{"integrationLatency": 3}, {}} {
		p := scopeOf(t, restKind, input{edit: func(ev any) {
			ev.(*events.APIGatewayProxyRequest).RequestContext.Authorizer = authorizer
		}}).Scope.Principal
		assert.Equal(t, "anonymous", p, "%v", authorizer)
	}

	// HTTP API: a JWT without sub, and an IAM authorizer without a user ARN, name their caller by context.
	jwt := scopeOf(t, httpKind, input{edit: func(ev any) {
		ev.(*events.APIGatewayV2HTTPRequest).RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
			JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: map[string]string{"client_id": "c1"}}}
	}}).Scope.Principal
	iam := scopeOf(t, httpKind, input{edit: func(ev any) {
		ev.(*events.APIGatewayV2HTTPRequest).RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
			IAM: &events.APIGatewayV2HTTPRequestContextAuthorizerIAMDescription{AccountID: "123456789012"}}
	}}).Scope.Principal
	assert.True(t, strings.HasPrefix(jwt, "ctx:"), jwt)
	assert.True(t, strings.HasPrefix(iam, "ctx:"), iam)
	assert.NotEqual(t, jwt, iam)
	// An empty authorizer description is no authorizer.
	none := scopeOf(t, httpKind, input{edit: func(ev any) {
		ev.(*events.APIGatewayV2HTTPRequest).RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{}
	}}).Scope.Principal
	assert.Equal(t, "anonymous", none)
	// A Function URL's authorizer without IAM is no authorizer.
	url := scopeOf(t, urlKind, input{edit: func(ev any) {
		ev.(*events.LambdaFunctionURLRequest).RequestContext.Authorizer = &events.LambdaFunctionURLRequestContextAuthorizerDescription{}
	}}).Scope.Principal
	assert.Equal(t, "anonymous", url)
}

func TestContextPrincipalOfAnUnmarshalableValue(t *testing.T) {
	// Only decoded JSON reaches contextPrincipal, which always marshals; anything else still names a caller and
	// never falls back to anonymous.
	p := contextPrincipal(map[string]any{"f": func() {}})
	assert.True(t, strings.HasPrefix(p, "ctx:"), p)
	assert.NotEqual(t, contextPrincipal(map[string]any{}), p)
	// The error's text is hashed, not nothing: a caller whose context failed to marshal is not named by the
	// hash of empty input.
	assert.NotEqual(t, "ctx:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", p)
}

func TestWithPrincipalStillOverrides(t *testing.T) {
	for _, k := range lambdaKinds {
		t.Run(k.name, func(t *testing.T) {
			var seen string
			got := scopeOf(t, k, input{event: "iam"}, WithPrincipal(func(_ context.Context, r *Request) string {
				seen = r.Principal
				return "tenant-7"
			}))
			assert.Equal(t, "iam:arn:aws:iam::123456789012:user/alice", seen)
			assert.Equal(t, "tenant-7", got.Scope.Principal)
			got = scopeOf(t, k, input{}, WithPrincipal(func(_ context.Context, r *Request) string {
				seen = r.Principal
				return ""
			}))
			assert.Empty(t, seen, "no authorizer")
			assert.Equal(t, "anonymous", got.Scope.Principal)
		})
	}
}

func TestFunctionInScope(t *testing.T) {
	for _, k := range frontEnds {
		t.Run(k.name, func(t *testing.T) {
			t.Setenv("AWS_LAMBDA_FUNCTION_NAME", "PaymentFunction")
			got := scopeOf(t, k, input{})
			assert.Equal(t, "PaymentFunction", got.Scope.Function, "from the environment Lambda sets")
			assert.Equal(t, got.Scope.ID(testKey), got.ID)
			got = scopeOf(t, k, input{}, WithFunctionName("payments-v2"))
			assert.Equal(t, "payments-v2", got.Scope.Function)
			// Without a function, the ID of releases before it was in the scope (TestScopeIDGolden).
			got = scopeOf(t, k, input{}, WithFunctionName(""))
			assert.Empty(t, got.Scope.Function)
			assert.Equal(t, "9e218b072a4b53e2823a30caf33c8ccbdb04c478d84884b63dccfb1309c006ef", got.ID)
		})
	}
}

func TestKeyRequiredForPutAndDelete(t *testing.T) {
	for _, k := range frontEnds {
		for _, method := range []string{http.MethodPut, http.MethodDelete} {
			t.Run(k.name+"/"+method, func(t *testing.T) {
				env := newEnv(t)
				var c counter
				send := k.wrap(env.engine, c.handle, WithKeyRequiredForPutAndDelete())
				r, err := send(context.Background(), input{method: method, header: map[string][]string{"Idempotency-Key": nil}})
				require.NoError(t, err)
				assertProblem(t, r, http.StatusBadRequest, "missing-key")
				assert.Zero(t, c.n.Load())
				// WithKeyOptional takes precedence.
				send = k.wrap(env.engine, c.handle, WithKeyRequiredForPutAndDelete(), WithKeyOptional())
				r, err = send(context.Background(), input{method: method, header: map[string][]string{"Idempotency-Key": nil}})
				require.NoError(t, err)
				assert.Equal(t, http.StatusCreated, r.StatusCode)
			})
		}
	}
}

func TestFingerprintHeaders(t *testing.T) {
	for _, k := range frontEnds {
		t.Run(k.name, func(t *testing.T) {
			tenant := func(v ...string) input {
				return input{header: map[string][]string{"Idempotency-Key": {testKey}, "X-Tenant": v}}
			}
			// By default headers do not count: a retry with another trace id or tenant header is a replay.
			env := newEnv(t)
			var c counter
			send := k.wrap(env.engine, c.handle)
			_, err := send(context.Background(), tenant("acme"))
			require.NoError(t, err)
			r, err := send(context.Background(), tenant("globex"))
			require.NoError(t, err)
			assert.Equal(t, "true", r.Headers[ReplayedHeader])

			// Named headers count, matched without regard to case, every value; read from the event's maps, or from
			// Request.Header when user code made the adapter build it.
			for _, opts := range [][]Option{
				{WithFingerprintHeaders("x-tenant")},
				{WithFingerprintHeaders("x-tenant"), WithPrincipal(func(_ context.Context, r *Request) string { return r.Principal })},
			} {
				env = newEnv(t)
				send = k.wrap(env.engine, c.handle, opts...)
				_, err = send(context.Background(), tenant("acme"))
				require.NoError(t, err)
				r, err = send(context.Background(), tenant("acme"))
				require.NoError(t, err)
				assert.Equal(t, "true", r.Headers[ReplayedHeader])
				for _, other := range []input{tenant("globex"), tenant(), tenant("acme", "globex")} {
					r, err = send(context.Background(), other)
					require.NoError(t, err)
					assertProblem(t, r, http.StatusUnprocessableEntity, "payload-mismatch")
				}
			}
		})
	}
}

// TestLegacyRecordThroughAdapters stores a record exactly as the release before fingerprint version 2 wrote it
// (its ID and its bare hex fingerprint, from their golden values) and retries through each adapter: a retry of
// the same request still gets the recorded response, another payload still gets 422.
func TestLegacyRecordThroughAdapters(t *testing.T) {
	const body = `{"amount":2000,"currency":"usd","meta":{"a":1,"b":[1,2]}}`
	const legacyFP = "88dc2f5e789dc0d903884c184890c2ce9ff8d348d246fa1be30775a6be843f30"
	const legacyID = "9e218b072a4b53e2823a30caf33c8ccbdb04c478d84884b63dccfb1309c006ef"
	for _, k := range frontEnds {
		t.Run(k.name, func(t *testing.T) {
			env := newEnv(t)
			ctx := context.Background()
			now := env.clock.Now()
			rec := idempotent.Record{ID: legacyID, Status: idempotent.StatusInProgress, Fingerprint: legacyFP,
				Owner: "old-release", LeaseEnd: now.Add(time.Minute), ExpiresAt: now.Add(24 * time.Hour)}
			_, err := env.store.Claim(ctx, idempotent.Claim{Record: rec, Now: now})
			require.NoError(t, err)
			rec.Response = []byte(`{"v":1,"statusCode":201,"headers":{"Content-Type":"application/json"},` +
				`"multiValueHeaders":null,"cookies":null,"body":"{\"id\":\"pay_old\"}","isBase64Encoded":false}`)
			require.NoError(t, env.store.Complete(ctx, rec, nil))

			var c counter
			send := k.wrap(env.engine, c.handle)
			retry := input{body: str(`{"meta": {"b": [1, 2], "a": 1}, "currency": "usd", "amount": 2000}`)}
			r, err := send(ctx, retry)
			require.NoError(t, err)
			assert.Equal(t, "true", r.Headers[ReplayedHeader])
			assert.Equal(t, `{"id":"pay_old"}`, r.Body)
			r, err = send(ctx, input{body: str(strings.Replace(body, "2000", "2500", 1))})
			require.NoError(t, err)
			assertProblem(t, r, http.StatusUnprocessableEntity, "payload-mismatch")
			assert.Zero(t, c.n.Load())

			// In Lambda the function is part of the scope, so the old record has another ID and the retry runs the
			// handler (the upgrade boundary the README describes), unless WithLegacyScope keeps the old IDs.
			t.Setenv("AWS_LAMBDA_FUNCTION_NAME", "PaymentFunction")
			r, err = k.wrap(env.engine, c.handle, WithLegacyScope())(ctx, retry)
			require.NoError(t, err)
			assert.Equal(t, "true", r.Headers[ReplayedHeader])
			assert.Zero(t, c.n.Load())
			r, err = k.wrap(env.engine, c.handle)(ctx, retry)
			require.NoError(t, err)
			assert.Equal(t, "false", r.Headers[ReplayedHeader])
			assert.EqualValues(t, 1, c.n.Load())
		})
	}
}

func TestLegacyScope(t *testing.T) {
	const sub = "7d3c1a2b-1111-4a5b-9c8d-0e1f2a3b4c5d"
	const arn = "arn:aws:iam::123456789012:user/alice"
	cases := []struct {
		kind  kind
		in    input
		old   string // the principal releases before namespacing derived
		outer string // what WithPrincipal sees
	}{
		{restKind, input{event: "cognito"}, sub, sub},
		{restKind, input{event: "lambda-authorizer"}, "user|a1b2c3", "user|a1b2c3"},
		{restKind, input{event: "iam"}, arn, arn},
		{httpKind, input{event: "jwt"}, sub, sub},
		{httpKind, input{event: "lambda-simple"}, "anonymous", ""},
		{urlKind, input{event: "iam"}, arn, arn},
		{urlKind, input{}, "anonymous", ""},
	}
	for _, tc := range cases {
		t.Run(tc.kind.name+"/"+tc.in.event, func(t *testing.T) {
			t.Setenv("AWS_LAMBDA_FUNCTION_NAME", "PaymentFunction")
			got := scopeOf(t, tc.kind, tc.in, WithLegacyScope())
			want := idempotent.Scope{Principal: tc.old, Method: "POST", Route: testRoute}
			assert.Equal(t, want, got.Scope)
			assert.Equal(t, want.ID(testKey), got.ID)
			var seen string
			scopeOf(t, tc.kind, tc.in, WithLegacyScope(), WithPrincipal(func(_ context.Context, r *Request) string {
				seen = r.Principal
				return r.Principal
			}))
			assert.Equal(t, tc.outer, seen)
		})
	}
	assert.Equal(t, "x", legacyPrincipal("lambda:x"))
	assert.Equal(t, "lambda:x", legacyPrincipal("jwt:lambda:x"), "only the outer namespace goes")
	assert.Empty(t, legacyPrincipal("ctx:0123"))
	assert.Empty(t, legacyPrincipal(""))
}

// TestEmptyPrincipalFieldsFallThrough: a source whose field is present but empty does not name the caller; the
// next source does.
func TestEmptyPrincipalFieldsFallThrough(t *testing.T) {
	const arn = "arn:aws:iam::123456789012:user/alice"
	rest := func(authorizer map[string]any) func(ev any) {
		return func(ev any) {
			r := ev.(*events.APIGatewayProxyRequest)
			r.RequestContext.Authorizer = authorizer
			r.RequestContext.Identity.UserArn = arn
		}
	}
	assert.Equal(t, "lambda:x", restPrincipal(events.APIGatewayProxyRequestContext{Authorizer: map[string]any{
		"claims": map[string]any{"sub": ""}, "principalId": "x"}}))
	assert.Equal(t, "iam:"+arn, scopeOf(t, restKind, input{edit: rest(map[string]any{"principalId": ""})}).Scope.Principal)
	assert.Equal(t, "iam:"+arn, scopeOf(t, restKind, input{edit: rest(map[string]any{
		"claims": map[string]any{"sub": ""}})}).Scope.Principal)
	assert.Equal(t, "iam:"+arn, v2Principal(&events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
		Lambda: map[string]any{"principalId": ""},
		IAM:    &events.APIGatewayV2HTTPRequestContextAuthorizerIAMDescription{UserARN: arn}}))
}
