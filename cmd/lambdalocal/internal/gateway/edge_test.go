package gateway_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/cmd/lambdalocal/internal/gateway"
	"github.com/idemkit/idemkit/cmd/lambdalocal/internal/runtimeapi"
)

// edgeServer serves a gateway the way the runner does: Go's server behind gateway.Listener, with
// ServerMaxHeaderBytes, on a loopback port.
func edgeServer(t *testing.T, bodyTimeout time.Duration) string {
	t.Helper()
	router, err := gateway.NewRouter([]gateway.Route{{Path: "/echo/{id}", Method: "ANY", Function: "Fn"}})
	require.NoError(t, err)
	fn := invokerFunc(func(context.Context, []byte, runtimeapi.InvokeOptions) (*runtimeapi.Result, error) {
		return &runtimeapi.Result{Payload: []byte(`{"statusCode":200,"headers":{"Content-Type":"text/plain; charset=utf-8","Connection":"close"},"body":"hi"}`)}, nil
	})
	srv := &http.Server{
		Handler:        &gateway.Gateway{Router: router, Functions: map[string]gateway.Invoker{"Fn": fn}, BodyTimeout: bodyTimeout},
		MaxHeaderBytes: gateway.ServerMaxHeaderBytes,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(gateway.Listener(ln)) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// raw sends a request as bytes (so it can be malformed or stop half way) and reads the answer, bounded.
func raw(t *testing.T, addr, request string) (*http.Response, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(20*time.Second)), "bounded wait for the answer")
	_, err = io.WriteString(c, request)
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err, "an answer within the deadline")
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

// TestEdgeAnswers: what API Gateway refuses before any integration runs is answered in its JSON shape, whether the
// gateway refuses it or Go's server does.
func TestEdgeAnswers(t *testing.T) {
	addr := edgeServer(t, 200*time.Millisecond)
	big := func(n int) string { return "X-Big: " + strings.Repeat("a", n) + "\r\n" }
	tests := []struct {
		name, request string
		status        int
		message       string
	}{
		{"headers over API Gateway's 10240 bytes", "GET /echo/1 HTTP/1.1\r\nHost: x\r\n" + big(10300) + "\r\n", 431, "Request Header Fields Too Large"},
		{"headers far over, refused by Go's server", "GET /echo/1 HTTP/1.1\r\nHost: x\r\n" + big(80<<10) + "\r\n", 431, "Request Header Fields Too Large"},
		{"control character in a header", "GET /echo/1 HTTP/1.1\r\nHost: x\r\nX-A: b\x01c\r\n\r\n", 400, "Bad Request"},
		{"malformed request line", "GET\r\n\r\n", 400, "Bad Request"},
		{"a body that stops arriving", "POST /echo/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789", 408, "Request Timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := raw(t, addr, tc.request)
			assert.Equal(t, tc.status, resp.StatusCode)
			assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			assert.JSONEq(t, `{"message":"`+tc.message+`"}`, body)
		})
	}
	t.Run("headers within the limit and a function's plain-text answer pass untouched", func(t *testing.T) {
		resp, body := raw(t, addr, "GET /echo/1 HTTP/1.1\r\nHost: x\r\n"+big(9000)+"\r\n")
		assert.Equal(t, 200, resp.StatusCode)
		assert.Equal(t, "text/plain; charset=utf-8", resp.Header.Get("Content-Type"))
		assert.Equal(t, "hi", body)
	})
	t.Run("a body that arrives in full is not timed out", func(t *testing.T) {
		resp, body := raw(t, addr, "POST /echo/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789")
		assert.Equal(t, 200, resp.StatusCode, body)
	})
}
