package httpidem

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestWriteResponse writes recorded responses of every front end's form: the middleware replays a record an
// apigw adapter wrote for the same scope (a function moved from API Gateway events to the Lambda Web Adapter).
func TestWriteResponse(t *testing.T) {
	for _, tc := range []struct {
		name   string
		resp   Response
		header http.Header
		body   string
	}{
		{"HTTP API response with cookies", Response{StatusCode: 201, Headers: map[string]string{"Content-Type": "text/plain"},
			MultiValueHeaders: map[string][]string{"Vary": {"Accept", "Origin"}}, Cookies: []string{"a=1", "b=2"}, Body: "hi"},
			http.Header{"Content-Type": {"text/plain"}, "Vary": {"Accept", "Origin"}, "Set-Cookie": {"a=1", "b=2"},
				"X-Outer": {"kept"}}, "hi"},
		{"single value wins over a multi-value one of the same name", Response{StatusCode: 200,
			Headers: map[string]string{"X-A": "single"}, MultiValueHeaders: map[string][]string{"X-A": {"m1", "m2"}}},
			http.Header{"X-A": {"single"}, "X-Outer": {"kept"}}, ""},
		{"base64 body", Response{StatusCode: 200, Body: "AAEC/w==", IsBase64Encoded: true},
			http.Header{"X-Outer": {"kept"}}, "\x00\x01\x02\xff"},
		{"base64 flag on a body that is not base64: written as it is", Response{StatusCode: 200, Body: "not base64!",
			IsBase64Encoded: true}, http.Header{"X-Outer": {"kept"}}, "not base64!"},
		{"the handler's header replaces one set outside", Response{StatusCode: 204,
			MultiValueHeaders: map[string][]string{"X-Outer": {"inner"}}}, http.Header{"X-Outer": {"inner"}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			rec.Header().Set("X-Outer", "kept") // set by a middleware outside this one
			writeResponse(rec, tc.resp)
			assert.Equal(t, tc.resp.StatusCode, rec.Code)
			assert.Equal(t, tc.header, rec.Header())
			assert.Equal(t, tc.body, rec.Body.String())
		})
	}
	t.Run("the response's slices are not shared with the writer", func(t *testing.T) {
		resp := Response{StatusCode: 200, MultiValueHeaders: map[string][]string{"Vary": make([]string, 1, 4)}}
		resp.MultiValueHeaders["Vary"][0] = "Accept"
		rec := httptest.NewRecorder()
		writeResponse(rec, resp)
		rec.Header().Add("Vary", "Origin") // an outer middleware appending after the replay
		assert.Equal(t, []string{"Accept", "Origin"}, rec.Header().Values("Vary"))
		assert.Empty(t, resp.MultiValueHeaders["Vary"][:2][1], "the append went to the recorded response's array")
	})
}

func TestHeaderOf(t *testing.T) {
	h := http.Header{"Idempotency-Key": {"k1", "k2"}}
	assert.Equal(t, []string{"k1", "k2"}, HeaderOf(h).Values("idempotency-key"))
	assert.Equal(t, h, HeaderOf(h).Header())
}

// TestProblemForUnknownErrors: an error the engine may add later fails closed as a store failure whose outcome is
// unknown, never as "not processed".
func TestProblemForUnknownErrors(t *testing.T) {
	p := newConfig(nil).problemFor(errors.New("something new"))
	assert.Equal(t, http.StatusServiceUnavailable, p.Status)
	assert.Contains(t, p.Detail, "whether it took effect is unknown")
	assert.Equal(t, 2*time.Second, p.retryAfter)
}
