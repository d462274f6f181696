package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/cmd/lambdalocal/internal/gateway"
)

var fixedTime = time.Date(2015, 4, 9, 12, 34, 56, 0, time.UTC)

// readRequest loads a raw HTTP request from testdata as Go's server would hand it over.
func readRequest(t *testing.T, name string) (*http.Request, []byte) {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "requests", name))
	require.NoError(t, err)
	defer f.Close()
	r, err := http.ReadRequest(bufio.NewReader(f))
	require.NoError(t, err)
	body, err := io.ReadAll(r.Body)
	require.NoError(t, err)
	r.RemoteAddr = "127.0.0.1:54321"
	local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 3000}
	return r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, local)), body
}

func TestNewEventGolden(t *testing.T) {
	r, body := readRequest(t, "post-payment.http")
	route := &gateway.Route{Path: "/payments", Method: "POST", Function: "PaymentFunction"}
	ev := gateway.NewEvent(r, body, gateway.RequestInfo{
		Route: route, RequestID: "c6af9ac6-7b61-11e6-9a41-93e8deadbeef", Time: fixedTime,
	})
	got, err := json.Marshal(ev)
	require.NoError(t, err)
	want, err := os.ReadFile(filepath.Join("testdata", "requests", "post-payment.json"))
	require.NoError(t, err)
	// The resource id is a hash of the route; the golden file names it by placeholder.
	wantStr := strings.Replace(string(want), "RESOURCE_ID", ev.RequestContext.ResourceID, 1)
	assert.JSONEq(t, wantStr, string(got))
	assert.Len(t, ev.RequestContext.ResourceID, 6)
}

func TestNewEventCases(t *testing.T) {
	tests := []struct {
		name        string
		file        string
		route       gateway.Route
		params      map[string]string
		binaryTypes []string
		check       func(t *testing.T, ev map[string]any)
	}{
		{
			name:   "greedy path and no body",
			file:   "get-proxy.http",
			route:  gateway.Route{Path: "/files/{proxy+}", Method: "ANY"},
			params: map[string]string{"proxy": "a/b/c.txt"},
			check: func(t *testing.T, ev map[string]any) {
				assert.Equal(t, "/files/{proxy+}", ev["resource"])
				assert.Equal(t, "/files/a/b/c.txt", ev["path"])
				assert.Equal(t, map[string]any{"proxy": "a/b/c.txt"}, ev["pathParameters"])
				assert.Nil(t, ev["queryStringParameters"], "no query: null, as API Gateway sends")
				assert.Nil(t, ev["multiValueQueryStringParameters"])
				assert.Equal(t, "", ev["body"])
				assert.NotContains(t, ev, "isBase64Encoded")
				rc := ev["requestContext"].(map[string]any)
				assert.Equal(t, "/Prod/files/a/b/c.txt", rc["path"])
				assert.Equal(t, "GET", rc["httpMethod"])
			},
		},
		{
			name:        "binary media type is base64",
			file:        "put-binary.http",
			route:       gateway.Route{Path: "/files/{name}", Method: "PUT"},
			params:      map[string]string{"name": "logo.png"},
			binaryTypes: []string{"image/png"},
			check: func(t *testing.T, ev map[string]any) {
				assert.Equal(t, true, ev["isBase64Encoded"])
				assert.Equal(t, "iVBORw==", ev["body"])
			},
		},
		{
			name:  "invalid UTF-8 is base64 even without binary types",
			file:  "put-binary.http",
			route: gateway.Route{Path: "/files/{name}", Method: "PUT"},
			check: func(t *testing.T, ev map[string]any) {
				assert.Equal(t, true, ev["isBase64Encoded"])
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, body := readRequest(t, tt.file)
			ev := gateway.NewEvent(r, body, gateway.RequestInfo{
				Route: &tt.route, PathParameters: tt.params, RequestID: "id", Time: fixedTime, BinaryMediaTypes: tt.binaryTypes,
			})
			b, err := json.Marshal(ev)
			require.NoError(t, err)
			var m map[string]any
			require.NoError(t, json.Unmarshal(b, &m))
			tt.check(t, m)
		})
	}
}
