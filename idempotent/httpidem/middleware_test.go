package httpidem_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/httpidem"
	"github.com/idemkit/idemkit/idempotent/idempotenttest"
	"github.com/idemkit/idemkit/idempotent/memstore"
	"github.com/idemkit/idemkit/internal/testwait"
)

// The contract table runs through the middleware beside the apigw adapters in idempotent/apigw (net_test.go); the
// tests here are the middleware's own: bodies, routes, streaming and hijacking, over a real server where the
// connection matters.

const key = "8e03978e-40d5-43e8-bc93-6894a57f9324"

func newEngine(t *testing.T, opts ...idempotent.Option) *idempotent.Engine {
	t.Helper()
	opts = append([]idempotent.Option{idempotent.WithClock(idempotenttest.NewClock(time.Date(2024, 3, 12, 10, 15, 30, 0,
		time.UTC))), idempotent.WithDisabled(false), idempotent.WithLogger(slog.New(slog.DiscardHandler))}, opts...)
	return idempotent.New(memstore.New(), opts...)
}

// post sends a POST with the key (when not empty) and body to h and returns the recorded response.
func post(h http.Handler, path, k, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	if k != "" {
		req.Header.Set(httpidem.DefaultKeyHeader, k)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// problemOf checks an RFC 9457 response of the given status and slug and returns its document.
func problemOf(t *testing.T, rec *httptest.ResponseRecorder, status int, slug string) map[string]any {
	t.Helper()
	assert.Equal(t, status, rec.Code)
	assert.Equal(t, httpidem.ProblemContentType, rec.Header().Get("Content-Type"))
	assert.Equal(t, "false", rec.Header().Get(httpidem.ReplayedHeader))
	var doc map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &doc), rec.Body.String())
	assert.Equal(t, httpidem.DefaultProblemTypeBase+slug, doc["type"])
	assert.EqualValues(t, status, doc["status"])
	assert.NotEmpty(t, doc["detail"])
	assert.NotContains(t, rec.Header(), "Retry-After", "nothing to wait for: the request itself must change")
	return doc
}

// counting is a handler that counts its runs and answers 201 with the body it read.
type counting struct{ n atomic.Int64 }

func (c *counting) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := c.n.Add(1)
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	fmt.Fprintf(w, `{"run":%d,"body":%q}`, n, body)
}

func TestBodyIsReadWithALimitAndHandedOn(t *testing.T) {
	for _, tc := range []struct {
		name   string
		size   int
		status int
	}{
		{"under the limit", 9, http.StatusCreated},
		{"at the limit", 10, http.StatusCreated},
		{"past the limit", 11, http.StatusRequestEntityTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c counting
			h := httpidem.Middleware(newEngine(t), httpidem.WithMaxBodyBytes(10))(&c)
			body := strings.Repeat("x", tc.size)
			rec := post(h, "/payments", key, body)
			if tc.status == http.StatusRequestEntityTooLarge {
				doc := problemOf(t, rec, tc.status, "body-too-large")
				assert.Contains(t, doc["detail"], "10 bytes")
				assert.Zero(t, c.n.Load())
				return
			}
			assert.Equal(t, tc.status, rec.Code)
			assert.JSONEq(t, fmt.Sprintf(`{"run":1,"body":%q}`, body), rec.Body.String(), "the handler reads the body unchanged")
		})
	}
	t.Run("a bound of one byte", func(t *testing.T) {
		var c counting
		h := httpidem.Middleware(newEngine(t), httpidem.WithMaxBodyBytes(1))(&c)
		problemOf(t, post(h, "/payments", key, "ab"), http.StatusRequestEntityTooLarge, "body-too-large")
		assert.Equal(t, http.StatusCreated, post(h, "/payments", key, "a").Code)
	})
	t.Run("zero keeps the default", func(t *testing.T) {
		var c counting
		h := httpidem.Middleware(newEngine(t), httpidem.WithMaxBodyBytes(0))(&c)
		rec := post(h, "/payments", key, strings.Repeat("x", 1<<20))
		assert.Equal(t, http.StatusCreated, rec.Code)
		assert.Equal(t, int64(6<<20), int64(httpidem.DefaultMaxBodyBytes))
	})
	t.Run("nil body", func(t *testing.T) {
		h := httpidem.Middleware(newEngine(t))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			assert.Nil(t, r.Body, "handed on as it came")
			w.WriteHeader(http.StatusCreated)
		}))
		req := httptest.NewRequest(http.MethodPost, "/payments", nil)
		req.Body = nil // a request built by hand, not by a server
		req.Header.Set(httpidem.DefaultKeyHeader, key)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		assert.Equal(t, http.StatusCreated, rec.Code)
	})
	t.Run("the client's body is closed", func(t *testing.T) {
		var c counting
		h := httpidem.Middleware(newEngine(t))(&c)
		body := &closeCounter{Reader: strings.NewReader("{}")}
		req := httptest.NewRequest(http.MethodPost, "/payments", body)
		req.Header.Set(httpidem.DefaultKeyHeader, key)
		h.ServeHTTP(httptest.NewRecorder(), req)
		assert.Equal(t, 1, body.closed)
	})
	t.Run("a declared length past the bound is not trusted for the buffer", func(t *testing.T) {
		var c counting
		h := httpidem.Middleware(newEngine(t))(&c)
		req := httptest.NewRequest(http.MethodPost, "/payments", strings.NewReader("{}"))
		req.ContentLength = 1 << 62
		req.Header.Set(httpidem.DefaultKeyHeader, key)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		assert.Equal(t, http.StatusCreated, rec.Code)
	})
	t.Run("no body", func(t *testing.T) {
		var c counting
		h := httpidem.Middleware(newEngine(t))(&c)
		req := httptest.NewRequest(http.MethodPost, "/payments", nil)
		req.Header.Set(httpidem.DefaultKeyHeader, key)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		assert.Equal(t, http.StatusCreated, rec.Code)
		assert.JSONEq(t, `{"run":1,"body":""}`, rec.Body.String())
	})
}

// closeCounter counts its Close calls.
type closeCounter struct {
	io.Reader
	closed int
}

func (c *closeCounter) Close() error { c.closed++; return nil }

// failingBody fails every read, as a connection that breaks mid-body does.
type failingBody struct{}

func (failingBody) Read([]byte) (int, error) {
	return 0, errors.New("connection reset (internal detail)")
}
func (failingBody) Close() error { return nil }

func TestUnreadableBodyIsA400(t *testing.T) {
	var c counting
	h := httpidem.Middleware(newEngine(t))(&c)
	req := httptest.NewRequest(http.MethodPost, "/payments", nil)
	req.Body = failingBody{}
	req.Header.Set(httpidem.DefaultKeyHeader, key)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	problemOf(t, rec, http.StatusBadRequest, "body-unreadable")
	assert.NotContains(t, rec.Body.String(), "internal detail")
	assert.Zero(t, c.n.Load())
}

func TestSafeMethodsPassThroughUnread(t *testing.T) {
	var c counting
	h := httpidem.Middleware(newEngine(t), httpidem.WithMaxBodyBytes(1))(&c)
	for range 2 {
		req := httptest.NewRequest(http.MethodGet, "/payments", strings.NewReader("qq")) // past the bound: unread
		req.Header.Set(httpidem.DefaultKeyHeader, key)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		assert.Equal(t, http.StatusCreated, rec.Code)
		assert.Equal(t, "false", rec.Header().Get(httpidem.ReplayedHeader))
	}
	assert.EqualValues(t, 2, c.n.Load())
}

// scopeHandler answers with the scope its request ran under.
func scopeHandler(t *testing.T) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inv, ok := idempotent.FromContext(r.Context())
		assert.True(t, ok, "the handler runs under a record")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(inv.Scope)
	})
}

func scopeOf(t *testing.T, rec *httptest.ResponseRecorder) idempotent.Scope {
	t.Helper()
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	var s idempotent.Scope
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &s))
	return s
}

func TestRoute(t *testing.T) {
	t.Setenv("AWS_LAMBDA_FUNCTION_NAME", "")
	mw := func(opts ...httpidem.Option) func(http.Handler) http.Handler {
		return httpidem.Middleware(newEngine(t), opts...)
	}
	t.Run("the ServeMux pattern, without its method", func(t *testing.T) {
		mux := http.NewServeMux()
		mux.Handle("POST /orders/{id}", mw()(scopeHandler(t)))
		mux.Handle("/refunds/{id}", mw()(scopeHandler(t)))
		mux.Handle("POST \t example.com/notes/", mw()(scopeHandler(t)))
		assert.Equal(t, idempotent.Scope{Principal: "anonymous", Method: "POST", Route: "/orders/{id}"},
			scopeOf(t, post(mux, "/orders/1", key, "")))
		assert.Equal(t, "/refunds/{id}", scopeOf(t, post(mux, "/refunds/7", key, "")).Route)
		assert.Equal(t, "example.com/notes/", scopeOf(t, post(mux, "http://example.com/notes/a", key, "")).Route)
	})
	t.Run("no pattern: the path", func(t *testing.T) {
		mux := http.NewServeMux()
		mux.Handle("POST /orders/{id}", scopeHandler(t))
		assert.Equal(t, "/orders/%2F1", scopeOf(t, post(mw()(mux), "/orders/%2F1", key, "")).Route)
	})
	t.Run("WithRouteFunc", func(t *testing.T) {
		mux := http.NewServeMux()
		mux.Handle("POST /orders/{id}", scopeHandler(t))
		whole := func(r *http.Request) string { _, p := mux.Handler(r); return p }
		assert.Equal(t, "/orders/{id}", scopeOf(t, post(mw(httpidem.WithRouteFunc(whole))(mux), "/orders/1", key, "")).Route)
		none := func(*http.Request) string { return "" }
		assert.Equal(t, "/orders/1", scopeOf(t, post(mw(httpidem.WithRouteFunc(none))(mux), "/orders/1", key, "")).Route)
		blank := func(*http.Request) string { return " /o" }
		assert.Equal(t, "/o", scopeOf(t, post(mw(httpidem.WithRouteFunc(blank))(mux), "/orders/1", key, "")).Route)
		fixed := func(*http.Request) string { return "/o/{id}" }
		assert.Equal(t, "/o/{id}", scopeOf(t, post(mw(httpidem.WithRouteFunc(fixed))(mux), "/orders/1", key, "")).Route)
	})
	t.Run("WithRoute wins", func(t *testing.T) {
		mux := http.NewServeMux()
		mux.Handle("POST /orders/{id}", mw(httpidem.WithRoute("/orders"))(scopeHandler(t)))
		assert.Equal(t, "/orders", scopeOf(t, post(mux, "/orders/1", key, "")).Route)
	})
}

func TestFunctionNameAndPrincipal(t *testing.T) {
	t.Setenv("AWS_LAMBDA_FUNCTION_NAME", "payments-api")
	s := scopeOf(t, post(httpidem.Middleware(newEngine(t))(scopeHandler(t)), "/p", key, ""))
	assert.Equal(t, "payments-api", s.Function, "the Lambda Web Adapter's function")
	s = scopeOf(t, post(httpidem.Middleware(newEngine(t), httpidem.WithFunctionName("svc"))(scopeHandler(t)), "/p", key, ""))
	assert.Equal(t, "svc", s.Function)
	t.Setenv("AWS_LAMBDA_FUNCTION_NAME", "")
	s = scopeOf(t, post(httpidem.Middleware(newEngine(t))(scopeHandler(t)), "/p", key, ""))
	assert.Empty(t, s.Function, "a server outside Lambda")
	assert.Equal(t, "anonymous", s.Principal)

	// Callers named by WithPrincipal (the middleware knows no authentication) never share a record.
	var c counting
	h := httpidem.Middleware(newEngine(t), httpidem.WithPrincipal(func(_ context.Context, r *httpidem.Request) string {
		assert.Empty(t, r.Principal)
		assert.Equal(t, r.Event.(*http.Request).Header.Get("X-User"), r.Header.Get("X-User"))
		return r.Event.(*http.Request).Header.Get("X-User")
	}))(&c)
	for _, user := range []string{"alice", "bob", "alice"} {
		req := httptest.NewRequest(http.MethodPost, "/p", strings.NewReader("{}"))
		req.Header.Set(httpidem.DefaultKeyHeader, key)
		req.Header.Set("X-User", user)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		assert.Equal(t, http.StatusCreated, rec.Code)
	}
	assert.EqualValues(t, 2, c.n.Load(), "alice's retry is a replay; bob's request is his own")
}

// serve starts a real server on loopback for h.
func serve(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func send(t *testing.T, srv *httptest.Server, k, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/payments?x=1", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set(httpidem.DefaultKeyHeader, k)
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

func TestReplayOverARealServerIsByteIdentical(t *testing.T) {
	var n atomic.Int64
	binary := "\x1f\x8b\x08\x00\xff\xfe not UTF-8 \xc3"
	srv := serve(t, httpidem.Middleware(newEngine(t))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h := w.Header()
		h.Add("Set-Cookie", "session=abc; Path=/; HttpOnly")
		h.Add("Set-Cookie", "theme=dark; Max-Age=3600")
		h.Add("Link", "</a>; rel=self")
		h.Add("Link", "</b>; rel=next")
		h.Set("Content-Type", "application/octet-stream")
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, binary[:5])
		_, _ = io.WriteString(w, binary[5:])
	})))
	first, firstBody := send(t, srv, key, `{"a":1}`)
	again, againBody := send(t, srv, key, `{ "a": 1 }`)
	assert.EqualValues(t, 1, n.Load())
	assert.Equal(t, http.StatusAccepted, again.StatusCode)
	assert.Equal(t, binary, firstBody)
	assert.Equal(t, firstBody, againBody)
	assert.Equal(t, "false", first.Header.Get(httpidem.ReplayedHeader))
	assert.Equal(t, "true", again.Header.Get(httpidem.ReplayedHeader))
	for _, h := range []http.Header{first.Header, again.Header} {
		h.Del("Date")
		h.Del(httpidem.ReplayedHeader)
	}
	assert.Equal(t, first.Header, again.Header)
	assert.Equal(t, []string{"session=abc; Path=/; HttpOnly", "theme=dark; Max-Age=3600"}, again.Header.Values("Set-Cookie"))

	r, body := send(t, srv, key, `{"a":2}`)
	assert.Equal(t, http.StatusUnprocessableEntity, r.StatusCode, body)
	assert.EqualValues(t, 1, n.Load())
}

func TestHandlerDefaults(t *testing.T) {
	for _, tc := range []struct {
		name   string
		h      http.HandlerFunc
		status int
		body   string
	}{
		{"writes nothing: 200", func(http.ResponseWriter, *http.Request) {}, http.StatusOK, ""},
		{"writes a body only: 200", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }, http.StatusOK, "ok"},
		{"a status after the body is too late", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, "ok")
			w.WriteHeader(http.StatusConflict)
		}, http.StatusOK, "ok"},
		{"an informational status first", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Link", "</style.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.WriteHeader(http.StatusCreated)
			w.WriteHeader(http.StatusConflict) // superfluous: the first final status counts
			_, _ = io.WriteString(w, "created")
		}, http.StatusCreated, "created"},
		{"the status of 100", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusContinue)
			w.WriteHeader(199)
			w.WriteHeader(http.StatusOK)
		}, http.StatusOK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int64
			h := httpidem.Middleware(newEngine(t))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n.Add(1)
				tc.h(w, r)
			}))
			for _, replayed := range []string{"false", "true"} {
				rec := post(h, "/p", key, "")
				assert.Equal(t, tc.status, rec.Code)
				assert.Equal(t, tc.body, rec.Body.String())
				assert.Equal(t, replayed, rec.Header().Get(httpidem.ReplayedHeader))
			}
			assert.EqualValues(t, 1, n.Load(), "recorded")
		})
	}
}

func TestStreamedResponsesAreNotRecorded(t *testing.T) {
	flushers := map[string]func(http.ResponseWriter){
		"http.Flusher":       func(w http.ResponseWriter) { w.(http.Flusher).Flush() },
		"ResponseController": func(w http.ResponseWriter) { assert.NoError(t, http.NewResponseController(w).Flush()) },
	}
	for name, flush := range flushers {
		t.Run(name, func(t *testing.T) {
			var n atomic.Int64
			srv := serve(t, httpidem.Middleware(newEngine(t))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				run := n.Add(1)
				w.Header().Set("Content-Type", "text/event-stream")
				w.WriteHeader(http.StatusCreated)
				fmt.Fprintf(w, "data: run %d\n\n", run)
				flush(w)
				fmt.Fprint(w, "data: more\n\n")
				w.WriteHeader(http.StatusTeapot) // too late, as in net/http
				flush(w)
			})))
			for run := 1; run <= 2; run++ {
				resp, body := send(t, srv, key, "{}")
				assert.Equal(t, http.StatusCreated, resp.StatusCode)
				assert.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
				assert.Equal(t, "false", resp.Header.Get(httpidem.ReplayedHeader))
				assert.Equal(t, fmt.Sprintf("data: run %d\n\ndata: more\n\n", run), body)
			}
			assert.EqualValues(t, 2, n.Load(), "the key is released: a retry runs the handler again")
		})
	}
	t.Run("nothing follows the stream, not even a problem", func(t *testing.T) {
		// An effect on a response that is not recorded is a failure the engine reports (a 503 problem), but the
		// client already has its response.
		srv := serve(t, httpidem.Middleware(newEngine(t))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			assert.True(t, idempotent.AddEffect(r.Context(), "a write"))
			fmt.Fprint(w, "streamed")
			w.(http.Flusher).Flush()
		})))
		resp, body := send(t, srv, key, "{}")
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "streamed", body)
	})
	t.Run("a flush reaches the client before the handler returns", func(t *testing.T) {
		release := make(chan struct{})
		srv := serve(t, httpidem.Middleware(newEngine(t))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, "x") // one byte: the smallest buffered write counts
			w.(http.Flusher).Flush()
			select { // bounded: the handler runs on the server's goroutine, where the test may not stop
			case <-release:
			case <-time.After(testwait.Bound(t)):
				t.Errorf("the client did not get the flushed byte while the handler ran")
			}
			fmt.Fprint(w, "y")
		})))
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/payments", strings.NewReader("{}"))
		require.NoError(t, err)
		req.Header.Set(httpidem.DefaultKeyHeader, key)
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		first := make([]byte, 1)
		_, err = io.ReadFull(resp.Body, first)
		close(release)
		require.NoError(t, err)
		assert.Equal(t, "x", string(first))
	})
	t.Run("flush before any write", func(t *testing.T) {
		var n atomic.Int64
		srv := serve(t, httpidem.Middleware(newEngine(t))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n.Add(1)
			w.(http.Flusher).Flush()
			w.WriteHeader(http.StatusAccepted) // too late: the flush sent 200, as net/http's does
			fmt.Fprint(w, "late")
		})))
		resp, body := send(t, srv, key, "{}")
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "late", body)
		send(t, srv, key, "{}")
		assert.EqualValues(t, 2, n.Load())
	})
}

func TestHijackedResponsesAreNotRecorded(t *testing.T) {
	var n atomic.Int64
	returned := make(chan struct{}, 2)
	mw := httpidem.Middleware(newEngine(t))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		run := n.Add(1)
		w.Header().Set("X-Lost", "headers set before a hijack are not sent")
		conn, rw, err := http.NewResponseController(w).Hijack()
		if !assert.NoError(t, err) {
			return
		}
		defer conn.Close()
		body := fmt.Sprintf("run %d", run)
		fmt.Fprintf(rw, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
		assert.NoError(t, rw.Flush())
		// After the hijack, writing to w is an error, as net/http has it.
		_, err = w.Write([]byte("x"))
		assert.ErrorIs(t, err, http.ErrHijacked)
	}))
	// The client has its answer before the handler returns and the key is released: the retry waits for that.
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mw.ServeHTTP(w, r)
		returned <- struct{}{}
	}))
	for run := 1; run <= 2; run++ {
		resp, body := send(t, srv, key, "{}")
		testwait.Recv(t, returned, "the hijacking handler to return")
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, fmt.Sprintf("run %d", run), body)
		assert.Empty(t, resp.Header.Get(httpidem.ReplayedHeader))
		assert.Empty(t, resp.Header.Get("X-Lost"))
	}
	assert.EqualValues(t, 2, n.Load(), "the key is released: a retry runs the handler again")
}

func TestAFailedHijackKeepsRecording(t *testing.T) {
	var n atomic.Int64
	h := httpidem.Middleware(newEngine(t))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		_, _, err := w.(http.Hijacker).Hijack()
		assert.ErrorIs(t, err, http.ErrNotSupported, "httptest.ResponseRecorder cannot be hijacked")
		// Deadlines reach the server's writer through Unwrap; the recorder cannot set them either.
		assert.ErrorIs(t, http.NewResponseController(w).SetWriteDeadline(time.Time{}), http.ErrNotSupported)
		w.WriteHeader(http.StatusCreated)
	}))
	for _, replayed := range []string{"false", "true"} {
		rec := post(h, "/p", key, "")
		assert.Equal(t, http.StatusCreated, rec.Code)
		assert.Equal(t, replayed, rec.Header().Get(httpidem.ReplayedHeader))
	}
	assert.EqualValues(t, 1, n.Load())
}

func TestDeadlinesReachTheServer(t *testing.T) {
	srv := serve(t, httpidem.Middleware(newEngine(t))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		assert.NoError(t, http.NewResponseController(w).SetWriteDeadline(time.Now().Add(time.Hour)))
		w.WriteHeader(http.StatusCreated)
	})))
	resp, _ := send(t, srv, key, "{}")
	assert.Equal(t, http.StatusCreated, resp.StatusCode)
}

func TestPanicReleasesTheKey(t *testing.T) {
	var n atomic.Int64
	h := httpidem.Middleware(newEngine(t))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			panic(http.ErrAbortHandler)
		}
		w.WriteHeader(http.StatusCreated)
	}))
	assert.PanicsWithValue(t, http.ErrAbortHandler, func() { post(h, "/p", key, "") })
	rec := post(h, "/p", key, "")
	assert.Equal(t, http.StatusCreated, rec.Code)
	assert.EqualValues(t, 2, n.Load())
}

func TestProblemServeHTTP(t *testing.T) {
	rec := httptest.NewRecorder()
	p := httpidem.Problem{Status: http.StatusPaymentRequired, Detail: "The card was declined.",
		Extensions: map[string]any{"code": "card_declined"}}
	p.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", nil))
	assert.Equal(t, http.StatusPaymentRequired, rec.Code)
	assert.Equal(t, httpidem.ProblemContentType, rec.Header().Get("Content-Type"))
	assert.JSONEq(t, `{"type":"about:blank","title":"Payment Required","status":402,"detail":"The card was declined.",`+
		`"code":"card_declined"}`, rec.Body.String())
}
