package apigw

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/memstore"
	"github.com/idemkit/idemkit/internal/testwait"
)

func TestConcurrentDuplicatesRunOnce(t *testing.T) {
	const n = 64
	for _, k := range frontEnds {
		t.Run(k.name, func(t *testing.T) {
			env := newEnv(t)
			b := newBlocker()
			send := k.wrap(env.engine, b.handle)
			results := make(chan response, n)
			start := make(chan struct{})
			for range n {
				go func() {
					if !recvOff(t, start, "the start signal") {
						return
					}
					r, err := send(context.Background(), input{})
					assert.NoError(t, err)
					results <- r
				}()
			}
			close(start)
			// The one that claimed the key blocks in the handler; every other one must answer without waiting.
			var got []response
			for range n - 1 {
				got = append(got, testwait.Recv(t, results, "a duplicate's answer"))
			}
			close(b.release)
			got = append(got, testwait.Recv(t, results, "the first request's answer"))

			executed := 0
			var first response
			for _, r := range got {
				switch r.StatusCode {
				case http.StatusCreated:
					executed++
					first = r
					assert.Equal(t, "false", r.Headers[ReplayedHeader])
				case http.StatusConflict:
					assertProblem(t, r, http.StatusConflict, "in-progress")
					assert.Equal(t, "1", r.Headers["Retry-After"]) // no request of the route has completed yet: the floor
				default:
					t.Errorf("unexpected status %d: %s", r.StatusCode, r.Body)
				}
			}
			assert.Equal(t, 1, executed)
			assert.EqualValues(t, 1, b.n.Load())

			// Once completed, duplicates replay the identical response.
			for range 3 {
				r, err := send(context.Background(), input{})
				require.NoError(t, err)
				assert.Equal(t, "true", r.Headers[ReplayedHeader])
				assert.Equal(t, wireJSON(t, first), wireJSON(t, r))
			}
			assert.EqualValues(t, 1, b.n.Load())
		})
	}
}

func TestReplayIsByteIdentical(t *testing.T) {
	var want events.APIGatewayV2HTTPResponse
	raw, err := os.ReadFile(filepath.Join("testdata", "response-rich.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &want))
	rich := fromHTTP(want)
	responses := map[string]response{
		"rich":             rich,
		"nil maps":         {StatusCode: 204},
		"empty maps":       {StatusCode: 200, Headers: map[string]string{}, MultiValueHeaders: map[string][]string{}, Cookies: []string{}},
		"html and unicode": {StatusCode: 200, Body: `<p>a & b → "ç" ` + "\u2028" + `</p>`},
		"binary base64":    {StatusCode: 200, Body: b64("\x00\xff\xfe binary"), IsBase64Encoded: true},
	}
	for _, k := range frontEnds {
		for name, resp := range responses {
			t.Run(k.name+"/"+name, func(t *testing.T) {
				env := newEnv(t)
				send := k.wrap(env.engine, func(context.Context, string) (response, error) { return resp, nil })
				first, err := send(context.Background(), input{})
				require.NoError(t, err)
				again, err := send(context.Background(), input{})
				require.NoError(t, err)
				assert.Equal(t, "false", first.Headers[ReplayedHeader])
				assert.Equal(t, "true", again.Headers[ReplayedHeader])
				assert.Equal(t, wireJSON(t, first), wireJSON(t, again))
				if k.name == "HTTP" {
					// The HTTP API response type carries every field; check the full JSON the runtime would send.
					f, _ := json.Marshal(toHTTP(withoutReplayed(first)))
					a, _ := json.Marshal(toHTTP(withoutReplayed(again)))
					assert.Equal(t, string(f), string(a))
				}
			})
		}
	}
}

func TestHandlerHeaderMapIsNotMutated(t *testing.T) {
	shared := map[string]string{"Content-Type": "application/json"}
	env := newEnv(t)
	send := restKind.wrap(env.engine, func(context.Context, string) (response, error) {
		return response{StatusCode: 200, Headers: shared, Body: "{}"}, nil
	})
	_, err := send(context.Background(), input{})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"Content-Type": "application/json"}, shared)

	// A handler that sets Idempotent-Replayed itself, in either map and any spelling, has it replaced, on copies.
	for _, k := range []kind{restKind, httpKind} {
		single := map[string]string{"IDEMPOTENT-REPLAYED": "y"}
		multi := map[string][]string{"idempotent-replayed": {"x"}}
		send := k.wrap(newEnv(t).engine, func(context.Context, string) (response, error) {
			return response{StatusCode: 201, Headers: single, MultiValueHeaders: multi}, nil
		})
		for _, replayed := range []string{"false", "true"} {
			r, err := send(context.Background(), input{})
			require.NoError(t, err)
			assert.Equal(t, map[string]string{ReplayedHeader: replayed}, r.Headers, k.name)
			assert.Empty(t, r.MultiValueHeaders, k.name)
		}
		assert.Equal(t, map[string]string{"IDEMPOTENT-REPLAYED": "y"}, single)
		assert.Equal(t, map[string][]string{"idempotent-replayed": {"x"}}, multi)
	}
}

func TestHeaderNamesAreCaseInsensitive(t *testing.T) {
	for _, name := range []string{"Idempotency-Key", "idempotency-key", "IDEMPOTENCY-KEY", "iDeMpOtEnCy-KeY"} {
		for _, k := range frontEnds {
			t.Run(k.name+"/"+name, func(t *testing.T) {
				env := newEnv(t)
				var c counter
				send := k.wrap(env.engine, c.handle)
				in := input{header: map[string][]string{"Idempotency-Key": nil, name: {testKey}}}
				_, err := send(context.Background(), in)
				require.NoError(t, err)
				r, err := send(context.Background(), withKey(testKey)) // canonical spelling: the same key
				require.NoError(t, err)
				assert.Equal(t, "true", r.Headers[ReplayedHeader])
				assert.EqualValues(t, 1, c.n.Load())
			})
		}
	}
	t.Run("custom header", func(t *testing.T) {
		env := newEnv(t)
		var c counter
		send := httpKind.wrap(env.engine, c.handle, WithKeyHeader("X-Request-Id"))
		r, err := send(context.Background(), input{header: map[string][]string{"x-request-id": {"req-1"}}})
		require.NoError(t, err)
		assert.Equal(t, http.StatusCreated, r.StatusCode)
		r, err = send(context.Background(), input{header: map[string][]string{"x-request-id": nil}})
		require.NoError(t, err)
		doc := assertProblem(t, r, http.StatusBadRequest, "missing-key")
		assert.Contains(t, doc["detail"], "X-Request-Id header")
	})
}

// TestRESTHeaderShapes covers the ways a REST event can carry the key: both maps, one of them, several spellings.
func TestRESTHeaderShapes(t *testing.T) {
	cases := []struct {
		name   string
		single map[string]string
		multi  map[string][]string
		status int
		reason string
	}{
		{"both maps agree", map[string]string{"Idempotency-Key": "k1"}, map[string][]string{"Idempotency-Key": {"k1"}}, 201, ""},
		{"headers only", map[string]string{"idempotency-key": "k1"}, nil, 201, ""},
		{"multiValueHeaders only", nil, map[string][]string{"IDEMPOTENCY-KEY": {"k1"}}, 201, ""},
		{"repeated header", map[string]string{"Idempotency-Key": "k2"}, map[string][]string{"Idempotency-Key": {"k1", "k2"}}, 400, "several values"},
		{"two spellings", map[string]string{"Idempotency-Key": "k1", "idempotency-key": "k2"}, nil, 400, "several values"},
		{"two spellings, same value", map[string]string{"Idempotency-Key": "k1", "idempotency-key": "k1"}, nil, 201, ""},
		{"maps disagree", map[string]string{"Idempotency-Key": "k2"}, map[string][]string{"Idempotency-Key": {"k1"}}, 400, "several values"},
		{"empty value", map[string]string{"Idempotency-Key": ""}, map[string][]string{"Idempotency-Key": {""}}, 400, "empty"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t)
			var c counter
			h := REST(env.engine, func(ctx context.Context, ev events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
				r, err := c.handle(ctx, ev.Body)
				return toREST(r), err
			})
			var ev events.APIGatewayProxyRequest
			loadEvent(input{}, "rest", &ev)
			ev.Headers, ev.MultiValueHeaders = tc.single, tc.multi
			r, err := h(context.Background(), ev)
			require.NoError(t, err)
			if tc.status == 201 {
				assert.Equal(t, 201, r.StatusCode, r.Body)
				return
			}
			doc := assertProblem(t, fromREST(r), tc.status, "invalid-key")
			assert.Contains(t, doc["detail"], tc.reason)
		})
	}
}

func TestBase64BodiesAreDecodedForTheFingerprint(t *testing.T) {
	for _, k := range frontEnds {
		t.Run(k.name, func(t *testing.T) {
			env := newEnv(t)
			var c counter
			send := k.wrap(env.engine, c.handle)
			_, err := send(context.Background(), input{base64: true})
			require.NoError(t, err)
			r, err := send(context.Background(), input{}) // the same body, not encoded
			require.NoError(t, err)
			assert.Equal(t, "true", r.Headers[ReplayedHeader])
			r, err = send(context.Background(), input{base64: true, body: str(`{"amount":1}`)})
			require.NoError(t, err)
			assertProblem(t, r, http.StatusUnprocessableEntity, "payload-mismatch")
			assert.EqualValues(t, 1, c.n.Load())
		})
	}
	t.Run("invalid base64 is fingerprinted as sent", func(t *testing.T) {
		env := newEnv(t)
		var c counter
		h := REST(env.engine, func(ctx context.Context, ev events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
			r, err := c.handle(ctx, ev.Body)
			return toREST(r), err
		})
		var ev events.APIGatewayProxyRequest
		loadEvent(input{}, "rest", &ev)
		ev.Body, ev.IsBase64Encoded = "%%% not base64", true
		r, err := h(context.Background(), ev)
		require.NoError(t, err)
		assert.Equal(t, 201, r.StatusCode)
	})
}

func TestPrincipalFromAuthorizer(t *testing.T) {
	const sub = "7d3c1a2b-1111-4a5b-9c8d-0e1f2a3b4c5d"
	const arn = "arn:aws:iam::123456789012:user/alice"
	cases := []struct {
		kind  kind
		event string
		want  string
	}{
		{restKind, "anonymous", "anonymous"},
		{restKind, "cognito", "cognito:" + sub},
		{restKind, "lambda-authorizer", "lambda:user|a1b2c3"},
		{restKind, "iam", "iam:" + arn},
		{httpKind, "anonymous", "anonymous"},
		{httpKind, "jwt", "jwt:" + sub},
		{httpKind, "lambda-authorizer", "lambda:user|a1b2c3"},
		{httpKind, "iam", "iam:" + arn},
		{urlKind, "anonymous", "anonymous"},
		{urlKind, "iam", "iam:" + arn},
	}
	for _, tc := range cases {
		t.Run(tc.kind.name+"/"+tc.event, func(t *testing.T) {
			env := newEnv(t)
			var got idempotent.Invocation
			send := tc.kind.wrap(env.engine, func(ctx context.Context, _ string) (response, error) {
				got, _ = idempotent.FromContext(ctx)
				return response{StatusCode: 201}, nil
			})
			_, err := send(context.Background(), input{event: tc.event})
			require.NoError(t, err)
			assert.Equal(t, idempotent.Scope{Principal: tc.want, Method: "POST", Route: testRoute}, got.Scope)
			assert.Equal(t, got.Scope.ID(testKey), got.ID)
		})
	}
}

func TestSameKeyOtherScopeIsAnotherRecord(t *testing.T) {
	for _, k := range []kind{restKind, httpKind} {
		t.Run(k.name, func(t *testing.T) {
			env := newEnv(t)
			var c counter
			send := k.wrap(env.engine, c.handle)
			principals := map[string]string{"REST": "cognito", "HTTP": "jwt"}
			for _, in := range []input{
				{event: "anonymous"},
				{event: principals[k.name]},
				{event: "iam"},
				{event: "iam", method: http.MethodPut}, // other method, same route
			} {
				r, err := send(context.Background(), in)
				require.NoError(t, err)
				assert.Equal(t, "false", r.Headers[ReplayedHeader], "%+v", in)
			}
			assert.EqualValues(t, 4, c.n.Load())
		})
	}
}

func TestRecordPolicyPerStatus(t *testing.T) {
	cases := []struct {
		status   int
		recorded bool
	}{
		{200, true}, {201, true}, {204, true}, {303, true},
		{400, false}, {401, true}, {402, true}, {403, true}, {404, true}, {408, false}, {409, true},
		{422, false}, {425, false}, {429, false},
		{500, false}, {502, false}, {503, false},
	}
	for _, k := range frontEnds {
		for _, tc := range cases {
			t.Run(fmt.Sprintf("%s/%d", k.name, tc.status), func(t *testing.T) {
				env := newEnv(t)
				c := counter{status: tc.status}
				send := k.wrap(env.engine, c.handle)
				r, err := send(context.Background(), input{})
				require.NoError(t, err)
				assert.Equal(t, tc.status, r.StatusCode)
				assert.Equal(t, "false", r.Headers[ReplayedHeader])
				r, err = send(context.Background(), input{})
				require.NoError(t, err)
				if tc.recorded {
					assert.Equal(t, "true", r.Headers[ReplayedHeader])
					assert.EqualValues(t, 1, c.n.Load())
				} else {
					assert.Equal(t, "false", r.Headers[ReplayedHeader])
					assert.EqualValues(t, 2, c.n.Load(), "released: the retry runs the handler again")
				}
			})
		}
	}
	t.Run("custom policy", func(t *testing.T) {
		env := newEnv(t)
		c := counter{status: 201}
		send := restKind.wrap(env.engine, c.handle, WithRecordStatus(func(int) bool { return false }))
		for range 2 {
			_, err := send(context.Background(), input{})
			require.NoError(t, err)
		}
		assert.EqualValues(t, 2, c.n.Load())
	})
}

func TestHandlerErrorIsReturnedUnchangedAndReleased(t *testing.T) {
	boom := errors.New("boom")
	for _, k := range lambdaKinds {
		t.Run(k.name, func(t *testing.T) {
			env := newEnv(t)
			calls := 0
			send := k.wrap(env.engine, func(context.Context, string) (response, error) {
				calls++
				if calls == 1 {
					// Even an error that wraps one of the engine's own is the handler's, returned as it is.
					return response{}, fmt.Errorf("%w: %w", boom, idempotent.ErrInProgress)
				}
				return response{StatusCode: 201}, nil
			})
			_, err := send(context.Background(), input{})
			require.ErrorIs(t, err, boom)
			assert.Equal(t, "boom: "+idempotent.ErrInProgress.Error(), err.Error())
			r, err := send(context.Background(), input{})
			require.NoError(t, err)
			assert.Equal(t, 201, r.StatusCode)
			assert.Equal(t, 2, calls)

			// On a route that runs straight through, too.
			get := k.wrap(env.engine, func(context.Context, string) (response, error) { return response{}, boom })
			_, err = get(context.Background(), input{method: http.MethodGet})
			assert.ErrorIs(t, err, boom)
		})
	}
}

func TestPanicReleasesAndRepanics(t *testing.T) {
	for _, k := range frontEnds {
		t.Run(k.name, func(t *testing.T) {
			env := newEnv(t)
			calls := 0
			send := k.wrap(env.engine, func(context.Context, string) (response, error) {
				calls++
				if calls == 1 {
					panic("handler bug")
				}
				return response{StatusCode: 201}, nil
			})
			assert.PanicsWithValue(t, "handler bug", func() { _, _ = send(context.Background(), input{}) })
			r, err := send(context.Background(), input{})
			require.NoError(t, err)
			assert.Equal(t, 201, r.StatusCode)
			assert.Equal(t, "false", r.Headers[ReplayedHeader])
			assert.Equal(t, 2, calls)
		})
	}
}

// effectStore fails every completion that carries effects with err, as DynamoDB does when an effect's condition
// fails (ErrEffectFailed) or when it refuses an invalid transaction (ErrPermanent).
type effectStore struct {
	*flakyStore
	err error
}

func (s effectStore) Complete(ctx context.Context, rec idempotent.Record, effects []idempotent.Effect) error {
	if len(effects) > 0 {
		return s.err
	}
	return s.flakyStore.Complete(ctx, rec, effects)
}

func TestFailedAtomicCompletion(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		status     int
		problem    string
		retryAfter string
		calls      int // after a retry with the same key
		why        string
	}{
		{"effect condition failed is 409", fmt.Errorf("transaction cancelled: %w", idempotent.ErrEffectFailed),
			http.StatusConflict, "effect-failed", "1", 2, "nothing was committed, so the retry runs again"},
		{"permanent refusal is 500 without Retry-After", fmt.Errorf("ValidationException: %w", idempotent.ErrPermanent),
			http.StatusInternalServerError, "store-rejected", "", 1, "a permanent refusal is not retried by the engine"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t)
			e := idempotent.New(effectStore{env.store, tc.err}, idempotent.WithClock(env.clock), idempotent.WithDisabled(false))
			calls := 0
			send := restKind.wrap(e, func(ctx context.Context, _ string) (response, error) {
				calls++
				idempotent.AddEffect(ctx, "put payment")
				return response{StatusCode: 201, Body: `{"id":"pay_1"}`}, nil
			})
			r, err := send(context.Background(), input{})
			require.NoError(t, err)
			assertProblem(t, r, tc.status, tc.problem)
			assert.Equal(t, tc.retryAfter, r.Headers["Retry-After"])
			if tc.calls > 1 {
				_, err = send(context.Background(), input{})
				require.NoError(t, err)
			}
			assert.Equal(t, tc.calls, calls, tc.why)
		})
	}
}

// TestStaleInvocationCannotOverwrite: a first invocation outlives its lease, a retry takes the key over and
// completes; the first one's late completion must not replace the retry's record.
func TestStaleInvocationCannotOverwrite(t *testing.T) {
	env := newEnv(t)
	b := newBlocker()
	calls := 0
	send := restKind.wrap(env.engine, func(ctx context.Context, body string) (response, error) {
		calls++
		if calls == 1 {
			return b.handle(ctx, body)
		}
		return response{StatusCode: 201, Body: `{"id":"pay_2"}`}, nil
	})
	done := make(chan response)
	go func() {
		r, _ := send(context.Background(), input{})
		done <- r
	}()
	testwait.Recv(t, b.started, "the stale invocation's handler to start")
	env.clock.Advance(2 * time.Minute) // the lease (one minute without a deadline) has ended
	second, err := send(context.Background(), input{})
	require.NoError(t, err)
	assert.JSONEq(t, `{"id":"pay_2"}`, second.Body)
	close(b.release)
	testwait.Recv(t, done, "the stale invocation's answer")
	r, err := send(context.Background(), input{})
	require.NoError(t, err)
	assert.Equal(t, "true", r.Headers[ReplayedHeader])
	assert.JSONEq(t, `{"id":"pay_2"}`, r.Body)
}

func TestKeyFromBodyField(t *testing.T) {
	cases := []struct {
		name   string
		body   string
		status int
		slug   string
		reason string
	}{
		{"string", `{"idempotencyKey":"k-1","data":{"amount":1}}`, 201, "", ""},
		{"number", `{"idempotencyKey":12345,"data":{}}`, 201, "", ""},
		{"nested path absent", `{"data":{}}`, 400, "missing-key", "body field"},
		{"null", `{"idempotencyKey":null}`, 400, "missing-key", ""},
		{"not JSON", `amount=1`, 400, "missing-key", ""},
		{"empty string", `{"idempotencyKey":""}`, 400, "invalid-key", "empty"},
		{"object", `{"idempotencyKey":{"a":1}}`, 400, "invalid-key", "object"},
		{"bool", `{"idempotencyKey":true}`, 400, "invalid-key", "boolean"},
		{"too long", `{"idempotencyKey":"` + strings.Repeat("x", 300) + `"}`, 400, "invalid-key", "longer than 255"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t)
			var c counter
			send := httpKind.wrap(env.engine, c.handle, WithKeyField("idempotencyKey"))
			r, err := send(context.Background(), input{body: str(tc.body), header: map[string][]string{"Idempotency-Key": nil}})
			require.NoError(t, err)
			if tc.status == 201 {
				assert.Equal(t, 201, r.StatusCode)
				return
			}
			doc := assertProblem(t, r, tc.status, tc.slug)
			assert.Contains(t, doc["detail"], tc.reason)
		})
	}
	t.Run("the key field is part of the fingerprint but the same key and body replay", func(t *testing.T) {
		env := newEnv(t)
		var c counter
		send := restKind.wrap(env.engine, c.handle, WithKeyField("idempotencyKey"))
		body := `{"idempotencyKey":"k-1","data":{"amount":1}}`
		_, err := send(context.Background(), input{body: str(body)})
		require.NoError(t, err)
		r, err := send(context.Background(), input{body: str(body)})
		require.NoError(t, err)
		assert.Equal(t, "true", r.Headers[ReplayedHeader])
		r, err = send(context.Background(), input{body: str(`{"idempotencyKey":"k-1","data":{"amount":2}}`)})
		require.NoError(t, err)
		assertProblem(t, r, http.StatusUnprocessableEntity, "payload-mismatch")
	})
}

func TestKeyFunc(t *testing.T) {
	fromQuery := WithKeyFunc(func(_ context.Context, r *Request) (string, error) {
		ev := r.Event.(events.APIGatewayProxyRequest)
		if ev.QueryStringParameters["bad"] != "" {
			return "", &idempotent.KeyError{Reason: "bad query"}
		}
		if ev.QueryStringParameters["secret"] != "" {
			return "", errors.New("secret internal failure")
		}
		return ev.QueryStringParameters["key"], nil
	})
	env := newEnv(t)
	var c counter
	h := REST(env.engine, func(ctx context.Context, ev events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
		r, err := c.handle(ctx, ev.Body)
		return toREST(r), err
	}, fromQuery)
	send := func(q map[string]string) response {
		var ev events.APIGatewayProxyRequest
		loadEvent(input{}, "rest", &ev)
		ev.QueryStringParameters = q
		r, err := h(context.Background(), ev)
		require.NoError(t, err)
		return fromREST(r)
	}
	assert.Equal(t, 201, send(map[string]string{"key": "q-1"}).StatusCode)
	assert.Equal(t, "true", send(map[string]string{"key": "q-1"}).Headers[ReplayedHeader])
	assertProblem(t, send(nil), 400, "missing-key")
	doc := assertProblem(t, send(map[string]string{"bad": "1"}), 400, "invalid-key")
	assert.Contains(t, doc["detail"], "bad query")
	r := send(map[string]string{"secret": "1"})
	assertProblem(t, r, 400, "invalid-key")
	assert.NotContains(t, r.Body, "secret internal failure")
}

func TestKeyOptional(t *testing.T) {
	for _, k := range frontEnds {
		t.Run(k.name, func(t *testing.T) {
			env := newEnv(t)
			var c counter
			send := k.wrap(env.engine, c.handle, WithKeyOptional())
			noKey := input{header: map[string][]string{"Idempotency-Key": nil}}
			for range 2 {
				r, err := send(context.Background(), noKey)
				require.NoError(t, err)
				assert.Equal(t, 201, r.StatusCode)
				assert.Equal(t, "false", r.Headers[ReplayedHeader])
			}
			assert.EqualValues(t, 2, c.n.Load(), "without a key there is no idempotency")
			r, err := send(context.Background(), withKey(""))
			require.NoError(t, err)
			assertProblem(t, r, 400, "invalid-key")
			_, err = send(context.Background(), input{})
			require.NoError(t, err)
			r, err = send(context.Background(), input{})
			require.NoError(t, err)
			assert.Equal(t, "true", r.Headers[ReplayedHeader])
		})
	}
}

func TestPayloadFields(t *testing.T) {
	env := newEnv(t)
	var c counter
	send := restKind.wrap(env.engine, c.handle, WithPayloadFields("amount", "currency"))
	_, err := send(context.Background(), input{body: str(`{"amount":2000,"currency":"usd","sent_at":"10:00"}`)})
	require.NoError(t, err)
	r, err := send(context.Background(), input{body: str(`{"sent_at":"10:05","currency":"usd","amount":2000}`)})
	require.NoError(t, err)
	assert.Equal(t, "true", r.Headers[ReplayedHeader], "a volatile field outside the selection is not a mismatch")
	r, err = send(context.Background(), input{body: str(`{"amount":2001,"currency":"usd","sent_at":"10:00"}`)})
	require.NoError(t, err)
	assertProblem(t, r, http.StatusUnprocessableEntity, "payload-mismatch")

	// One field selects too; a body that is not JSON is compared whole.
	one := restKind.wrap(newEnv(t).engine, c.handle, WithPayloadFields("amount"))
	_, err = one(context.Background(), input{body: str(`{"amount":2000,"currency":"usd"}`)})
	require.NoError(t, err)
	r, err = one(context.Background(), input{body: str(`{"amount":2000,"currency":"eur"}`)})
	require.NoError(t, err)
	assert.Equal(t, "true", r.Headers[ReplayedHeader])
	plain := restKind.wrap(newEnv(t).engine, c.handle, WithPayloadFields("amount"))
	_, err = plain(context.Background(), input{body: str("amount=2000")})
	require.NoError(t, err)
	r, err = plain(context.Background(), input{body: str("amount=2001")})
	require.NoError(t, err)
	assertProblem(t, r, http.StatusUnprocessableEntity, "payload-mismatch")
}

func TestPrincipalAndRouteOverrides(t *testing.T) {
	env := newEnv(t)
	var scopes []idempotent.Scope
	send := urlKind.wrap(env.engine, func(ctx context.Context, _ string) (response, error) {
		inv, _ := idempotent.FromContext(ctx)
		scopes = append(scopes, inv.Scope)
		return response{StatusCode: 201}, nil
	},
		WithRoute("/orders/{id}"),
		WithPrincipal(func(_ context.Context, r *Request) string {
			if tenant := r.Header.Get("X-Tenant"); tenant != "" {
				return "tenant:" + tenant + "/" + r.Principal
			}
			return ""
		}))
	_, err := send(context.Background(), input{event: "iam", header: map[string][]string{"X-Tenant": {"acme"}}})
	require.NoError(t, err)
	_, err = send(context.Background(), input{})
	require.NoError(t, err)
	assert.Equal(t, []idempotent.Scope{
		{Principal: "tenant:acme/iam:arn:aws:iam::123456789012:user/alice", Method: "POST", Route: "/orders/{id}"},
		{Principal: "anonymous", Method: "POST", Route: "/orders/{id}"},
	}, scopes)
}

func TestProblemTypeBase(t *testing.T) {
	env := newEnv(t)
	var c counter
	send := restKind.wrap(env.engine, c.handle, WithProblemTypeBase("https://api.example.com/problems/"))
	r, err := send(context.Background(), input{header: map[string][]string{"Idempotency-Key": nil}})
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.Body), &doc))
	assert.Equal(t, "https://api.example.com/problems/missing-key", doc["type"])
}

func TestDisabledEngineRunsEveryRequest(t *testing.T) {
	e := idempotent.New(nil, idempotent.WithDisabled(true))
	var c counter
	send := httpKind.wrap(e, c.handle)
	for range 2 {
		r, err := send(context.Background(), input{header: map[string][]string{"Idempotency-Key": {"a", "b"}}})
		require.NoError(t, err)
		assert.Equal(t, 201, r.StatusCode)
		assert.Equal(t, "false", r.Headers[ReplayedHeader])
	}
	assert.EqualValues(t, 2, c.n.Load())
}

func TestV2RouteKey(t *testing.T) {
	cases := []struct{ routeKey, rawPath, want string }{
		{"POST /payments", "/payments", "/payments"},
		{"ANY /orders/{id}", "/orders/7", "/orders/{id}"},
		{"GET /files/{proxy+}", "/files/a/b", "/files/{proxy+}"},
		{"$default", "/anything/here", "/anything/here"},
		{"POST ", "/raw", "/raw"}, // a route key without a path names no route
		{"", "", ""},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, v2Route(tc.routeKey, tc.rawPath), tc.routeKey)
	}
}

func TestProblemJSON(t *testing.T) {
	p := Problem{
		Type:       "https://api.example.com/problems/validation",
		Title:      "Invalid request",
		Status:     400,
		Detail:     "amount must be positive & < 1e8",
		Extensions: map[string]any{"errors": []map[string]string{{"field": "amount", "message": "must be positive"}}, "status": 999},
	}
	r := p.RESTResponse()
	assert.Equal(t, 400, r.StatusCode)
	assert.Equal(t, ProblemContentType, r.Headers["Content-Type"])
	assert.JSONEq(t, `{"type":"https://api.example.com/problems/validation","title":"Invalid request","status":400,
		"detail":"amount must be positive & < 1e8","errors":[{"field":"amount","message":"must be positive"}]}`, r.Body)
	assert.Contains(t, r.Body, "& <", "no HTML escaping")

	assert.JSONEq(t, `{"type":"about:blank","title":"Not Found","status":404}`, Problem{Status: 404}.HTTPResponse().Body)
	assert.JSONEq(t, `{"type":"about:blank","title":"Not Found","status":404,"instance":"/payments/pay_9"}`,
		Problem{Status: 404, Instance: "/payments/pay_9"}.HTTPResponse().Body)
	bad := Problem{Status: 500, Detail: "x", Extensions: map[string]any{"f": func() {}}}
	assert.JSONEq(t, `{"type":"about:blank","title":"Internal Server Error","status":500,"detail":"x"}`, bad.FunctionURLResponse().Body)
}

// tooLargeStore answers claims as a store does for a key whose response was too large to record.
type tooLargeStore struct{ *flakyStore }

func (s tooLargeStore) Claim(context.Context, idempotent.Claim) (*idempotent.Record, error) {
	return nil, fmt.Errorf("store: claim abc: response too large: %w", idempotent.ErrResponseUnavailable)
}

func TestResponseTooLargeIsNotRetryable(t *testing.T) {
	env := newEnv(t)
	e := idempotent.New(tooLargeStore{env.store}, idempotent.WithClock(env.clock), idempotent.WithDisabled(false),
		idempotent.WithLogger(slog.New(slog.DiscardHandler)))
	var c counter
	send := restKind.wrap(e, c.handle)
	r, err := send(context.Background(), input{})
	require.NoError(t, err)
	assertProblem(t, r, http.StatusConflict, "response-unavailable")
	assert.NotContains(t, r.Headers, "Retry-After")
	assert.EqualValues(t, 0, c.n.Load())
}

func TestRefusedKeysAreCountedAsInvalid(t *testing.T) {
	var outcomes []idempotent.Outcome
	env := newEnv(t, idempotent.WithOutcomeHook(func(_ context.Context, ev idempotent.Event) {
		outcomes = append(outcomes, ev.Outcome)
	}))
	var c counter
	send := httpKind.wrap(env.engine, c.handle)
	for _, vals := range [][]string{{"a", "b"}, {""}, {"a,b"}, {"é"}, nil} {
		_, err := send(context.Background(), input{header: map[string][]string{"Idempotency-Key": vals}})
		require.NoError(t, err)
	}
	assert.Equal(t, []idempotent.Outcome{idempotent.OutcomeInvalidKey, idempotent.OutcomeInvalidKey,
		idempotent.OutcomeInvalidKey, idempotent.OutcomeInvalidKey, idempotent.OutcomeMissingKey}, outcomes)
	assert.Zero(t, env.store.Len())
}

func TestSafeMethodsRunStraightThrough(t *testing.T) {
	for _, k := range frontEnds {
		for _, method := range []string{"GET", "HEAD", "OPTIONS", "get"} {
			t.Run(k.name+"/"+method, func(t *testing.T) {
				store := memstore.New()
				var c counter
				send := k.wrap(idempotent.New(store, idempotent.WithDisabled(false)), c.handle)
				for _, in := range []input{{method: method, header: map[string][]string{"Idempotency-Key": nil}}, {method: method}} {
					r, err := send(context.Background(), in)
					require.NoError(t, err)
					assert.Equal(t, 201, r.StatusCode, "no key needed, and a key is not used")
					assert.Equal(t, "false", r.Headers[ReplayedHeader])
				}
				assert.EqualValues(t, 2, c.n.Load())
				assert.Zero(t, store.Len(), "nothing recorded for a read")
			})
		}
	}
}
