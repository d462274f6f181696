package runner_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/cmd/lambdalocal/internal/runner"
	"github.com/idemkit/idemkit/internal/ddblocal/ddbtest"
)

// TestServeHTTPAPI serves a template whose function has HttpApi events: the real bootstrap gets payload format
// 2.0 events, and its v2 responses (cookies, a result without statusCode) come back as an HTTP API sends them.
func TestServeHTTPAPI(t *testing.T) {
	t.Setenv(runner.EnvDynamoDBEndpoint, ddbtest.Endpoint(t))
	log := &syncBuf{}
	srv, err := runner.Serve(context.Background(), runner.ServeOptions{
		Options:            runner.Options{Template: filepath.Join("..", "..", "testdata", "httpapi.yaml"), Instances: 1, Log: log},
		Addr:               "127.0.0.1:0",
		IntegrationTimeout: 10 * time.Second,
	})
	require.NoError(t, err, log.String())
	t.Cleanup(srv.Close)

	type v2echo struct {
		Version        string            `json:"version"`
		RouteKey       string            `json:"routeKey"`
		RawPath        string            `json:"rawPath"`
		PathParameters map[string]string `json:"pathParameters"`
		Cookies        []string          `json:"cookies"`
		Query          map[string]string `json:"query"`
		Key            string            `json:"key"`
		Stage          string            `json:"stage"`
	}
	for _, tc := range []struct {
		name, method, path string
		want               v2echo
	}{
		{"route with a parameter", http.MethodGet, "/v2/things/42?tag=a&tag=b", v2echo{
			Version: "2.0", RouteKey: "GET /v2/things/{id}", RawPath: "/v2/things/42", PathParameters: map[string]string{"id": "42"},
			Cookies: []string{"c=1", "d=2"}, Query: map[string]string{"tag": "a,b"}, Key: "k-1", Stage: "$default"}},
		{"greedy path", http.MethodDelete, "/v2/files/a/b.txt", v2echo{
			Version: "2.0", RouteKey: "ANY /v2/files/{proxy+}", RawPath: "/v2/files/a/b.txt", PathParameters: map[string]string{"proxy": "a/b.txt"},
			Cookies: []string{"c=1", "d=2"}, Key: "k-1", Stage: "$default"}},
		{"$default route", http.MethodPost, "/anything/else", v2echo{
			Version: "2.0", RouteKey: "$default", RawPath: "/anything/else",
			Cookies: []string{"c=1", "d=2"}, Key: "k-1", Stage: "$default"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, nil)
			require.NoError(t, err)
			req.Header.Set("Idempotency-Key", "k-1")
			req.Header.Set("Cookie", "c=1; d=2")
			resp, body := doRequest(t, req)
			require.Equal(t, 200, resp.StatusCode, string(body))
			assert.Equal(t, []string{"seen=1; Path=/", "count=2"}, resp.Header.Values("Set-Cookie"))
			var got v2echo
			require.NoError(t, json.Unmarshal(body, &got), string(body))
			assert.Equal(t, tc.want, got)
		})
	}
	t.Run("result without statusCode", func(t *testing.T) {
		resp, body := get(t, srv.URL+"/v2/plain")
		assert.Equal(t, 200, resp.StatusCode)
		assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
		assert.JSONEq(t, `{"plain":"yes"}`, string(body))
	})
	t.Run("idemkit's apigw.HTTP adapter", func(t *testing.T) {
		post := func(key, body string) (*http.Response, []byte) {
			req, err := http.NewRequest(http.MethodPost, srv.URL+"/v2/orders", strings.NewReader(body))
			require.NoError(t, err)
			if key != "" {
				req.Header.Set("Idempotency-Key", key)
			}
			return doRequest(t, req)
		}
		resp, first := post("order-1", `{"n":1}`)
		require.Equal(t, 201, resp.StatusCode, string(first))
		assert.Equal(t, "false", resp.Header.Get("Idempotent-Replayed"))
		assert.JSONEq(t, `{"run":1,"body":"{\"n\":1}"}`, string(first))

		resp, again := post("order-1", `{"n":1}`)
		require.Equal(t, 201, resp.StatusCode, string(again))
		assert.Equal(t, "true", resp.Header.Get("Idempotent-Replayed"))
		assert.Equal(t, string(first), string(again), "replayed byte for byte")

		resp, other := post("order-1", `{"n":2}`)
		assert.Equal(t, 422, resp.StatusCode, string(other))
		assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))

		resp, missing := post("", `{"n":1}`)
		assert.Equal(t, 400, resp.StatusCode, string(missing))
	})
	assert.Contains(t, log.String(), "mounted ANY    "+srv.URL+"$default -> EchoV2Function")
}

func doRequest(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, b
}
