package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/cmd/lambdalocal/internal/gateway"
	"github.com/idemkit/idemkit/cmd/lambdalocal/internal/runtimeapi"
)

// invokerFunc fakes a function with a Go func.
type invokerFunc func(ctx context.Context, payload []byte, opts runtimeapi.InvokeOptions) (*runtimeapi.Result, error)

func (f invokerFunc) Invoke(ctx context.Context, payload []byte, opts runtimeapi.InvokeOptions) (*runtimeapi.Result, error) {
	return f(ctx, payload, opts)
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func newGateway(t *testing.T, fn invokerFunc) (*httptest.Server, *syncBuf) {
	t.Helper()
	router, err := gateway.NewRouter([]gateway.Route{
		{Path: "/echo/{id}", Method: "ANY", Function: "Fn"},
		{Path: "/missing", Method: "GET", Function: "Nope"},
	})
	require.NoError(t, err)
	log := &syncBuf{}
	g := &gateway.Gateway{
		Router:             router,
		Functions:          map[string]gateway.Invoker{"Fn": fn},
		IntegrationTimeout: 300 * time.Millisecond,
		Log:                log,
	}
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	return srv, log
}

func ok(payload string) invokerFunc {
	return func(context.Context, []byte, runtimeapi.InvokeOptions) (*runtimeapi.Result, error) {
		return &runtimeapi.Result{Payload: []byte(payload)}, nil
	}
}

func do(t *testing.T, method, url string, body io.Reader) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

func TestGatewayMapsResponses(t *testing.T) {
	tests := []struct {
		name       string
		fn         invokerFunc
		wantStatus int
		wantBody   string
		wantHeader map[string]string
	}{
		{"success", ok(`{"statusCode":201,"headers":{"Location":"/echo/1","Content-Type":"application/json"},"body":"{\"id\":1}"}`),
			201, `{"id":1}`, map[string]string{"Location": "/echo/1"}},
		{"malformed response", ok(`{"Hello":"World"}`), 502, `{"message":"Internal server error"}`, nil},
		{"function error", func(context.Context, []byte, runtimeapi.InvokeOptions) (*runtimeapi.Result, error) {
			return &runtimeapi.Result{Payload: []byte(`{"errorType":"x","errorMessage":"boom"}`), FunctionError: "Unhandled"}, nil
		}, 502, `{"message":"Internal server error"}`, nil},
		{"integration timeout", func(ctx context.Context, _ []byte, _ runtimeapi.InvokeOptions) (*runtimeapi.Result, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}, 504, `{"message":"Endpoint request timed out"}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, log := newGateway(t, tt.fn)
			resp, body := do(t, http.MethodPost, srv.URL+"/echo/1", strings.NewReader(`{}`))
			assert.Equal(t, tt.wantStatus, resp.StatusCode)
			assert.JSONEq(t, tt.wantBody, body)
			assert.NotEmpty(t, resp.Header.Get("X-Amzn-Requestid"))
			for k, v := range tt.wantHeader {
				assert.Equal(t, v, resp.Header.Get(k))
			}
			assert.Contains(t, log.String(), "POST /echo/1 -> Fn (ANY /echo/{id})")
			assert.Regexp(t, `POST /echo/1 -> Fn \(ANY /echo/\{id\}\) `+itoa(tt.wantStatus)+` \d+`, log.String())
		})
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestGatewayPassesTheEvent(t *testing.T) {
	var got events.APIGatewayProxyRequest
	var gotID string
	srv, _ := newGateway(t, func(_ context.Context, payload []byte, opts runtimeapi.InvokeOptions) (*runtimeapi.Result, error) {
		gotID = opts.RequestID
		if err := json.Unmarshal(payload, &got); err != nil {
			return nil, err
		}
		return &runtimeapi.Result{Payload: []byte(`{"statusCode":200,"body":""}`)}, nil
	})
	req, _ := http.NewRequest(http.MethodPut, srv.URL+"/echo/42?x=1", strings.NewReader("hi"))
	req.Header.Set("Idempotency-Key", "k1")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "/echo/{id}", got.Resource)
	assert.Equal(t, map[string]string{"id": "42"}, got.PathParameters)
	assert.Equal(t, "k1", got.Headers["Idempotency-Key"])
	assert.Equal(t, "hi", got.Body)
	assert.Equal(t, "PUT", got.HTTPMethod)
	assert.Equal(t, gotID, got.RequestContext.RequestID, "one id for API Gateway and Lambda")
	assert.Equal(t, resp.Header.Get("X-Amzn-Requestid"), gotID)
}

func TestGatewayErrors(t *testing.T) {
	srv, _ := newGateway(t, ok(`{"statusCode":200}`))
	t.Run("unknown route", func(t *testing.T) {
		resp, body := do(t, http.MethodGet, srv.URL+"/nope", nil)
		assert.Equal(t, 403, resp.StatusCode)
		assert.JSONEq(t, `{"message":"Missing Authentication Token"}`, body)
		assert.Equal(t, "MissingAuthenticationTokenException", resp.Header.Get("X-Amzn-Errortype"))
	})
	t.Run("body over 10 MB", func(t *testing.T) {
		resp, body := do(t, http.MethodPost, srv.URL+"/echo/1", bytes.NewReader(make([]byte, gateway.MaxBody+1)))
		assert.Equal(t, 413, resp.StatusCode)
		assert.Equal(t, "HTTP content length exceeded 10485760 bytes.", body)
	})
	t.Run("event over 6 MB", func(t *testing.T) {
		resp, body := do(t, http.MethodPost, srv.URL+"/echo/1", strings.NewReader(strings.Repeat("a", runtimeapi.MaxPayload)))
		assert.Equal(t, 413, resp.StatusCode)
		assert.JSONEq(t, `{"message":"Request Too Long"}`, body)
	})
}
