package apigw

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/idempotenttest"
	"github.com/idemkit/idemkit/idempotent/memstore"
	"github.com/idemkit/idemkit/internal/testwait"
)

const (
	testKey   = "8e03978e-40d5-43e8-bc93-6894a57f9324"
	testBody  = `{"amount": 2000, "currency": "usd", "description": "order 42"}`
	testRoute = "/payments"
)

var epoch = time.Date(2024, 3, 12, 10, 15, 30, 0, time.UTC)

// flakyStore is a memstore whose calls fail on demand, standing in for DynamoDB being unreachable.
type flakyStore struct {
	*memstore.Store
	failClaim atomic.Bool
}

var errUnreachable = errors.New("dial tcp 10.0.0.1:443: connect: connection refused (internal detail)")

func (s *flakyStore) Claim(ctx context.Context, c idempotent.Claim) (*idempotent.Record, error) {
	if s.failClaim.Load() {
		return nil, errUnreachable
	}
	return s.Store.Claim(ctx, c)
}

type env struct {
	engine *idempotent.Engine
	clock  *idempotenttest.Clock
	store  *flakyStore
}

func newEnv(t *testing.T, opts ...idempotent.Option) *env {
	t.Helper()
	clk := idempotenttest.NewClock(epoch)
	st := &flakyStore{Store: memstore.New()}
	opts = append([]idempotent.Option{idempotent.WithClock(clk), idempotent.WithDisabled(false),
		idempotent.WithLogger(slog.New(slog.DiscardHandler))}, opts...)
	return &env{engine: idempotent.New(st, opts...), clock: clk, store: st}
}

// input is a request in adapter-neutral form; each adapter turns it into its own event shape, as API Gateway would.
type input struct {
	event  string              // testdata base name without the adapter prefix, "anonymous" by default
	header map[string][]string // replaces the base event's Idempotency-Key header when non-nil; a nil slice removes it
	body   *string             // replaces the body when non-nil
	base64 bool                // base64-encode the body
	method string              // replaces the method when not empty
	// edit changes the event last: an *events.APIGatewayProxyRequest, *events.APIGatewayV2HTTPRequest or
	// *events.LambdaFunctionURLRequest.
	edit func(ev any)
}

func withKey(k string) input { return input{header: map[string][]string{"Idempotency-Key": {k}}} }

func str(s string) *string { return &s }

// testHandler is the handler under test in adapter-neutral form.
type testHandler func(ctx context.Context, body string) (response, error)

// kind is one adapter under test.
type kind struct {
	name   string
	prefix string
	wrap   func(e *idempotent.Engine, h testHandler, opts ...Option) func(context.Context, input) (response, error)
}

var restKind = kind{name: "REST", prefix: "rest", wrap: func(e *idempotent.Engine, h testHandler, opts ...Option) func(context.Context, input) (response, error) {
	wrapped := REST(e, func(ctx context.Context, ev events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
		r, err := h(ctx, ev.Body)
		return toREST(r), err
	}, opts...)
	return func(ctx context.Context, in input) (response, error) {
		var ev events.APIGatewayProxyRequest
		loadEvent(in, "rest", &ev)
		for name := range in.header {
			deleteFold(ev.Headers, name)
			deleteFold(ev.MultiValueHeaders, name)
		}
		for name, vals := range in.header {
			if vals != nil {
				ev.Headers[name] = vals[len(vals)-1]
				ev.MultiValueHeaders[name] = vals
			}
		}
		if in.body != nil {
			ev.Body = *in.body
		}
		if in.base64 {
			ev.Body, ev.IsBase64Encoded = b64(ev.Body), true
		}
		if in.method != "" {
			ev.HTTPMethod, ev.RequestContext.HTTPMethod = in.method, in.method
		}
		if in.edit != nil {
			in.edit(&ev)
		}
		resp, err := wrapped(ctx, ev)
		return fromREST(resp), err
	}
}}

var httpKind = kind{name: "HTTP", prefix: "http", wrap: func(e *idempotent.Engine, h testHandler, opts ...Option) func(context.Context, input) (response, error) {
	wrapped := HTTP(e, func(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		r, err := h(ctx, ev.Body)
		return toHTTP(r), err
	}, opts...)
	return func(ctx context.Context, in input) (response, error) {
		var ev events.APIGatewayV2HTTPRequest
		loadEvent(in, "http", &ev)
		applyJoined(ev.Headers, in)
		if in.body != nil {
			ev.Body = *in.body
		}
		if in.base64 {
			ev.Body, ev.IsBase64Encoded = b64(ev.Body), true
		}
		if in.method != "" {
			ev.RequestContext.HTTP.Method = in.method
			ev.RouteKey = in.method + " " + testRoute
		}
		if in.edit != nil {
			in.edit(&ev)
		}
		resp, err := wrapped(ctx, ev)
		return fromHTTP(resp), err
	}
}}

var urlKind = kind{name: "FunctionURL", prefix: "url", wrap: func(e *idempotent.Engine, h testHandler, opts ...Option) func(context.Context, input) (response, error) {
	wrapped := FunctionURL(e, func(ctx context.Context, ev events.LambdaFunctionURLRequest) (events.LambdaFunctionURLResponse, error) {
		r, err := h(ctx, ev.Body)
		return toFunctionURL(r), err
	}, opts...)
	return func(ctx context.Context, in input) (response, error) {
		var ev events.LambdaFunctionURLRequest
		loadEvent(in, "url", &ev)
		applyJoined(ev.Headers, in)
		if in.body != nil {
			ev.Body = *in.body
		}
		if in.base64 {
			ev.Body, ev.IsBase64Encoded = b64(ev.Body), true
		}
		if in.method != "" {
			ev.RequestContext.HTTP.Method = in.method
		}
		if in.edit != nil {
			in.edit(&ev)
		}
		resp, err := wrapped(ctx, ev)
		return fromFunctionURL(resp), err
	}
}}

// applyJoined sets headers as HTTP APIs and Function URLs deliver them: names in lower case, repeated values
// joined with commas.
func applyJoined(h map[string]string, in input) {
	for name := range in.header {
		deleteFold(h, name)
	}
	for name, vals := range in.header {
		if vals != nil {
			h[strings.ToLower(name)] = strings.Join(vals, ",")
		}
	}
}

func deleteFold[V any](m map[string]V, name string) {
	for k := range m {
		if strings.EqualFold(k, name) {
			delete(m, k)
		}
	}
}

func loadEvent(in input, prefix string, v any) {
	name := in.event
	if name == "" {
		name = "anonymous"
	}
	b, err := os.ReadFile(filepath.Join("testdata", prefix+"-"+name+".json"))
	if err != nil {
		panic(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		panic(err)
	}
}

// counter is a handler that counts its executions and answers 201 with a body naming the execution.
type counter struct {
	n      atomic.Int64
	status int
}

func (c *counter) handle(_ context.Context, body string) (response, error) {
	n := c.n.Add(1)
	status := c.status
	if status == 0 {
		status = http.StatusCreated
	}
	return response{
		StatusCode: status,
		Headers:    map[string]string{"Content-Type": "application/json", "Location": "/payments/pay_1"},
		Body:       `{"id":"pay_1","execution":` + itoa(n) + `}`,
	}, nil
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

// assertProblem checks an RFC 9457 response of the given status and type slug.
func assertProblem(t *testing.T, r response, status int, slug string) map[string]any {
	t.Helper()
	assert.Equal(t, status, r.StatusCode)
	assert.Equal(t, ProblemContentType, r.Headers["Content-Type"])
	assert.Equal(t, "false", r.Headers[ReplayedHeader])
	var doc map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.Body), &doc), r.Body)
	assert.Equal(t, DefaultProblemTypeBase+slug, doc["type"])
	assert.NotEmpty(t, doc["title"])
	assert.EqualValues(t, status, doc["status"])
	assert.NotEmpty(t, doc["detail"])
	assert.NotContains(t, r.Body, "internal detail")
	assert.NotContains(t, r.Body, "pay_1", "a problem must not reveal a recorded response")
	switch slug {
	case "in-progress", "store-unavailable", "effect-failed":
	default:
		assert.NotContains(t, r.Headers, "Retry-After", "a %s problem has nothing to wait for", slug)
	}
	return doc
}

// wireJSON is the JSON the Lambda runtime would send to API Gateway for r, minus the Idempotent-Replayed header.
func wireJSON(t *testing.T, r response) string {
	t.Helper()
	b, err := json.Marshal(withoutReplayed(r))
	require.NoError(t, err)
	return string(b)
}

// blocker is a handler that signals when it starts and waits for release.
type blocker struct {
	started chan struct{}
	release chan struct{}
	once    sync.Once
	n       atomic.Int64
}

func newBlocker() *blocker {
	return &blocker{started: make(chan struct{}), release: make(chan struct{})}
}

func (b *blocker) handle(ctx context.Context, body string) (response, error) {
	b.n.Add(1)
	b.once.Do(func() { close(b.started) })
	// The handler runs on the request's goroutine, where a test may not call t.Fatal: a release that never comes
	// fails the request instead, after testwait's bound.
	select {
	case <-b.release:
	case <-time.After(testwait.Generous):
		return response{}, errors.New("blocker: gave up waiting to be released")
	}
	return response{StatusCode: http.StatusCreated, Headers: map[string]string{"Content-Type": "application/json"},
		Body: `{"id":"pay_1"}`}, nil
}

// withoutReplayed returns r without its Idempotent-Replayed header (any spelling), on copies of its maps.
func withoutReplayed(r response) response {
	r.Headers = maps.Clone(r.Headers)
	r.MultiValueHeaders = maps.Clone(r.MultiValueHeaders)
	drop := func(k string) bool { return strings.EqualFold(k, ReplayedHeader) }
	maps.DeleteFunc(r.Headers, func(k, _ string) bool { return drop(k) })
	maps.DeleteFunc(r.MultiValueHeaders, func(k string, _ []string) bool { return drop(k) })
	return r
}

// recvOff receives from ch on a goroutine other than the test's, where t.Fatal may not be called: when nothing
// arrives within testwait.Bound(t) it records an error on t and reports false, so the goroutine can return.
func recvOff[T any](t *testing.T, ch <-chan T, what string) bool {
	select {
	case <-ch:
		return true
	case <-time.After(testwait.Bound(t)):
		t.Errorf("gave up after %s waiting for %s", testwait.Bound(t).Round(time.Second), what)
		return false
	}
}
