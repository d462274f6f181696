package gateway_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/cmd/lambdalocal/internal/gateway"
)

func TestParseResponse(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		status  int
		header  http.Header
		body    string
	}{
		{"minimal", `{"statusCode":204}`, 204, http.Header{"Content-Type": {"application/json"}}, ""},
		{"aws-lambda-go zero values", `{"statusCode":200,"headers":null,"multiValueHeaders":null,"body":"ok"}`, 200,
			http.Header{"Content-Type": {"application/json"}}, "ok"},
		{"headers merged, multi wins", `{"statusCode":201,"headers":{"Location":"/payments/1","X-A":"single","Content-Type":"text/plain"},
			"multiValueHeaders":{"X-A":["m1","m2"],"Set-Cookie":["a=1","b=2"]},"body":"created"}`, 201,
			http.Header{"Location": {"/payments/1"}, "X-A": {"m1", "m2"}, "Set-Cookie": {"a=1", "b=2"}, "Content-Type": {"text/plain"}}, "created"},
		{"base64 body decoded", `{"statusCode":200,"headers":{"Content-Type":"image/png"},"body":"iVBORw==","isBase64Encoded":true}`, 200,
			http.Header{"Content-Type": {"image/png"}}, "\x89PNG"},
		{"framing headers dropped", `{"statusCode":200,"headers":{"Content-Length":"999"},"body":"x"}`, 200,
			http.Header{"Content-Type": {"application/json"}}, "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := gateway.ParseResponse([]byte(tt.payload))
			require.NoError(t, err)
			assert.Equal(t, tt.status, resp.StatusCode)
			assert.Equal(t, tt.header, resp.Header)
			assert.Equal(t, tt.body, string(resp.Body))
		})
	}
}

func TestParseResponseMalformed(t *testing.T) {
	for name, payload := range map[string]string{
		"not JSON":            `Hello`,
		"JSON string":         `"hello"`,
		"null":                `null`,
		"array":               `[1]`,
		"no statusCode":       `{"body":"x"}`,
		"statusCode string":   `{"statusCode":"200"}`,
		"statusCode fraction": `{"statusCode":200.5}`,
		"statusCode range":    `{"statusCode":700}`,
		"body not a string":   `{"statusCode":200,"body":{"a":1}}`,
		"unknown field":       `{"statusCode":200,"Hello":"World"}`,
		"header not string":   `{"statusCode":200,"headers":{"X":["a"]}}`,
		"bad base64":          `{"statusCode":200,"body":"***","isBase64Encoded":true}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := gateway.ParseResponse([]byte(payload))
			assert.ErrorIs(t, err, gateway.ErrMalformedResponse)
		})
	}
}

// The cause of a malformed response stays matchable with errors.As, so a caller can tell a syntax error from a
// wrong type or a bad base64 body.
func TestParseResponseWrapsCause(t *testing.T) {
	for _, parse := range []struct {
		name string
		fn   func([]byte) (*gateway.ProxyResponse, error)
	}{
		{"1.0", gateway.ParseResponse},
		{"2.0", gateway.ParseHTTPResponse},
	} {
		for _, tc := range []struct {
			name    string
			payload string
			as      func(error) bool
		}{
			{"syntax", `{"statusCode":}`, func(err error) bool { var e *json.SyntaxError; return errors.As(err, &e) }},
			{"truncated", `{"statusCode":`, func(err error) bool { return errors.Is(err, io.ErrUnexpectedEOF) }},
			{"wrong type", `{"statusCode":200,"body":{"a":1}}`,
				func(err error) bool { var e *json.UnmarshalTypeError; return errors.As(err, &e) }},
			{"fraction status", `{"statusCode":200.5}`,
				func(err error) bool { var e *strconv.NumError; return errors.As(err, &e) }},
			{"bad base64", `{"statusCode":200,"body":"***","isBase64Encoded":true}`,
				func(err error) bool { var e base64.CorruptInputError; return errors.As(err, &e) }},
		} {
			t.Run(parse.name+"/"+tc.name, func(t *testing.T) {
				_, err := parse.fn([]byte(tc.payload))
				require.ErrorIs(t, err, gateway.ErrMalformedResponse)
				assert.True(t, tc.as(err), "cause not wrapped: %v", err)
			})
		}
	}
}
