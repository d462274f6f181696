package apigw

import (
	"context"
	"encoding/base64"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/idempotenttest"
	"github.com/idemkit/idemkit/internal/testwait"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// contractRows holds one test per row of CONTRACT §1, run against each adapter.
var contractRows = []struct {
	row  string
	test func(t *testing.T, k kind)
}{
	{"first request with a new key: the handler's response plus Idempotent-Replayed false", func(t *testing.T, k kind) {
		env := newEnv(t)
		var c counter
		send := k.wrap(env.engine, c.handle)
		r, err := send(context.Background(), input{})
		require.NoError(t, err)
		assert.Equal(t, http.StatusCreated, r.StatusCode)
		assert.Equal(t, "false", r.Headers[ReplayedHeader])
		assert.Equal(t, "/payments/pay_1", r.Headers["Location"])
		assert.JSONEq(t, `{"id":"pay_1","execution":1}`, r.Body)
		assert.EqualValues(t, 1, c.n.Load())
	}},
	{"same key, same fingerprint, first completed: recorded response byte for byte plus Idempotent-Replayed true", func(t *testing.T, k kind) {
		env := newEnv(t)
		var c counter
		send := k.wrap(env.engine, c.handle)
		first, err := send(context.Background(), input{})
		require.NoError(t, err)
		env.clock.Advance(time.Hour)
		// Same JSON payload with other key order and whitespace: the canonical fingerprint matches.
		again, err := send(context.Background(), input{body: str(`{"description":"order 42","currency":"usd","amount":2000}`)})
		require.NoError(t, err)
		assert.Equal(t, "true", again.Headers[ReplayedHeader])
		assert.Equal(t, wireJSON(t, first), wireJSON(t, again))
		assert.EqualValues(t, 1, c.n.Load())
	}},
	{"same key, different fingerprint: 422 and the recorded response is not revealed", func(t *testing.T, k kind) {
		env := newEnv(t)
		var c counter
		send := k.wrap(env.engine, c.handle)
		_, err := send(context.Background(), input{})
		require.NoError(t, err)
		r, err := send(context.Background(), input{body: str(`{"amount": 9999, "currency": "usd"}`)})
		require.NoError(t, err)
		assertProblem(t, r, http.StatusUnprocessableEntity, "payload-mismatch")
		assert.EqualValues(t, 1, c.n.Load())
	}},
	{"same key while the first is still running: 409 with Retry-After from the route's durations", func(t *testing.T, k kind) {
		env := newEnv(t, idempotent.WithLease(time.Minute))
		b := newBlocker()
		send := k.wrap(env.engine, b.handle)
		done := make(chan response)
		go func() {
			r, _ := send(context.Background(), input{})
			done <- r
		}()
		testwait.Recv(t, b.started, "the first request's handler to start")
		env.clock.Advance(15*time.Second + 300*time.Millisecond)
		r, err := send(context.Background(), input{})
		require.NoError(t, err)
		assertProblem(t, r, http.StatusConflict, "in-progress")
		assert.Equal(t, "1", r.Headers["Retry-After"]) // no request of the route has completed yet: the floor
		close(b.release)
		first := testwait.Recv(t, done, "the first request's answer")
		assert.Equal(t, http.StatusCreated, first.StatusCode)
		assert.EqualValues(t, 1, b.n.Load())
	}},
	{"same key while the first is still running, with the wait option: the first one's response once it completes", func(t *testing.T, k kind) {
		b := newBlocker()
		done := make(chan response, 1)
		// The duplicate's first pause in its wait lets the first request finish, so its next read finds the record.
		clk := &releasingClock{Clock: idempotenttest.NewClock(epoch), onSleep: func() {
			close(b.release)
			testwait.Recv(t, done, "the first request's answer")
		}}
		env := newEnv(t, idempotent.WithClock(clk), idempotent.WithWait(idempotent.DefaultWait))
		send := k.wrap(env.engine, b.handle)
		go func() {
			r, _ := send(context.Background(), input{})
			done <- r
		}()
		testwait.Recv(t, b.started, "the first request's handler to start")
		r, err := send(context.Background(), input{})
		require.NoError(t, err)
		assert.Equal(t, http.StatusCreated, r.StatusCode)
		assert.Equal(t, "true", r.Headers[ReplayedHeader])
		assert.JSONEq(t, `{"id":"pay_1"}`, r.Body)
		assert.EqualValues(t, 1, b.n.Load())
	}},
	{"first invocation crashed, lease ended: the next request runs the handler again (default policy)", func(t *testing.T, k kind) {
		env := newEnv(t)
		var c counter
		send := k.wrap(env.engine, c.handle)
		crashedClaim(t, env, 30*time.Second)
		r, err := send(context.Background(), input{})
		require.NoError(t, err)
		assertProblem(t, r, http.StatusConflict, "in-progress")
		assert.Equal(t, "1", r.Headers["Retry-After"])
		env.clock.Advance(31 * time.Second)
		r, err = send(context.Background(), input{})
		require.NoError(t, err)
		assert.Equal(t, http.StatusCreated, r.StatusCode)
		assert.Equal(t, "false", r.Headers[ReplayedHeader])
		assert.EqualValues(t, 1, c.n.Load())
	}},
	{"first invocation crashed, lease ended: 409 outcome unknown under the refuse policy", func(t *testing.T, k kind) {
		env := newEnv(t, idempotent.WithLeasePolicy(idempotent.LeaseRefuse))
		var c counter
		send := k.wrap(env.engine, c.handle)
		crashedClaim(t, env, 30*time.Second)
		env.clock.Advance(31 * time.Second)
		r, err := send(context.Background(), input{})
		require.NoError(t, err)
		doc := assertProblem(t, r, http.StatusConflict, "outcome-unknown")
		assert.NotContains(t, r.Headers, "Retry-After")
		assert.Contains(t, doc["detail"], "new idempotency key")
		assert.EqualValues(t, 0, c.n.Load())
	}},
	{"key required on the route but absent: 400", func(t *testing.T, k kind) {
		env := newEnv(t)
		var c counter
		send := k.wrap(env.engine, c.handle)
		r, err := send(context.Background(), input{header: map[string][]string{"Idempotency-Key": nil}})
		require.NoError(t, err)
		doc := assertProblem(t, r, http.StatusBadRequest, "missing-key")
		assert.Contains(t, doc["detail"], "Idempotency-Key header")
		assert.EqualValues(t, 0, c.n.Load())
	}},
	{"key malformed: 400 with the reason", func(t *testing.T, k kind) {
		cases := []struct {
			name   string
			values []string
			reason string
		}{
			{"empty", []string{""}, "empty"},
			{"blank", []string{"  "}, "empty"},
			{"longer than 255", []string{strings.Repeat("k", 256)}, "longer than 255"},
			{"not visible ASCII", []string{"clé-1"}, "not visible ASCII"},
			{"inner space", []string{"a b"}, "not visible ASCII"},
			{"control character", []string{"a\x01b"}, "not visible ASCII"},
			{"several values", []string{"key-1", "key-2"}, "several values"},
			{"comma", []string{"key-1,key-2"}, "several values"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				env := newEnv(t)
				var c counter
				send := k.wrap(env.engine, c.handle)
				r, err := send(context.Background(), input{header: map[string][]string{"Idempotency-Key": tc.values}})
				require.NoError(t, err)
				doc := assertProblem(t, r, http.StatusBadRequest, "invalid-key")
				assert.Contains(t, doc["detail"], tc.reason)
				assert.EqualValues(t, 0, c.n.Load())
			})
		}
	}},
	{"store fails before the claim: 503 with Retry-After, handler not run", func(t *testing.T, k kind) {
		env := newEnv(t)
		var c counter
		send := k.wrap(env.engine, c.handle)
		env.store.failClaim.Store(true)
		r, err := send(context.Background(), input{})
		require.NoError(t, err)
		assertProblem(t, r, http.StatusServiceUnavailable, "store-unavailable")
		assert.Equal(t, "2", r.Headers["Retry-After"])
		assert.EqualValues(t, 0, c.n.Load())
		env.store.failClaim.Store(false)
		r, err = send(context.Background(), input{})
		require.NoError(t, err)
		assert.Equal(t, http.StatusCreated, r.StatusCode)
	}},
}

// crashedClaim claims the test key through the store as an invocation would that then died: INPROGRESS with a
// lease ending after lease, never completed.
func crashedClaim(t *testing.T, env *env, lease time.Duration) {
	t.Helper()
	scope := idempotent.Scope{Principal: "anonymous", Method: http.MethodPost, Route: testRoute}
	now := env.clock.Now()
	existing, err := env.store.Claim(context.Background(), idempotent.Claim{Now: now, Record: idempotent.Record{
		ID:          scope.ID(testKey),
		Status:      idempotent.StatusInProgress,
		Fingerprint: (&idempotent.Target{Method: http.MethodPost, Route: testRoute, Path: testRoute}).FingerprintString(testBody),
		Owner:       "dead-invocation",
		LeaseEnd:    now.Add(lease),
		ExpiresAt:   now.Add(24 * time.Hour),
	}})
	require.NoError(t, err)
	require.Nil(t, existing)
}

// TestContract runs every row of the contract through the four front ends: REST, HTTP API, Function URL and
// net/http.
func TestContract(t *testing.T) {
	for _, k := range frontEnds {
		t.Run(k.name, func(t *testing.T) {
			for _, row := range contractRows {
				t.Run(row.row, func(t *testing.T) { row.test(t, k) })
			}
		})
	}
}

// releasingClock is a fake clock that calls onSleep once, on the first pause of a waiting request.
type releasingClock struct {
	*idempotenttest.Clock
	once    sync.Once
	onSleep func()
}

func (c *releasingClock) Sleep(ctx context.Context, d time.Duration) error {
	c.once.Do(c.onSleep)
	return c.Clock.Sleep(ctx, d)
}

// TestRetryAfterOfASlowRoute: Retry-After is the route's own duration in whole seconds, beyond single digits too.
func TestRetryAfterOfASlowRoute(t *testing.T) {
	for _, k := range frontEnds {
		t.Run(k.name, func(t *testing.T) {
			env := newEnv(t)
			send := k.wrap(env.engine, func(context.Context, string) (response, error) {
				env.clock.Advance(20 * time.Second) // the route takes 20 s
				return response{StatusCode: http.StatusCreated}, nil
			})
			r, err := send(context.Background(), withKey("another-key"))
			require.NoError(t, err)
			require.Equal(t, http.StatusCreated, r.StatusCode)
			crashedClaim(t, env, time.Minute)
			r, err = send(context.Background(), input{})
			require.NoError(t, err)
			assertProblem(t, r, http.StatusConflict, "in-progress")
			assert.Equal(t, "20", r.Headers["Retry-After"])
		})
	}
}
