package httpidem

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/idemkit/idemkit/idempotent"
)

// Middleware returns net/http middleware that makes the handlers it wraps idempotent with the contract of the
// apigw adapters (see the package documentation): the key header, scope, fingerprint, method and record policies,
// problem responses, Idempotent-Replayed and byte-identical replays.
//
// The handler's response is buffered and written once the engine has settled the request (recorded, or released),
// so a client never sees a response that a retry would not get. A handler that flushes (http.Flusher,
// http.ResponseController) or hijacks the connection streams instead: its response is passed through as written
// from that moment on, with Idempotent-Replayed: false, and never recorded; the key is released when the handler
// returns, so a retry with the same key runs the handler again. Keep streaming routes out of the middleware unless
// running them twice is safe.
func Middleware(e *idempotent.Engine, opts ...Option) func(http.Handler) http.Handler {
	c := NewCore(e, opts...)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { c.ServeHTTP(w, r, next) })
	}
}

// ServeHTTP serves r through the core with next as the handler: what Middleware's handlers do.
func (c *Core) ServeHTTP(w http.ResponseWriter, r *http.Request, next http.Handler) {
	if c.passes(r.Method) {
		w.Header().Set(ReplayedHeader, "false")
		next.ServeHTTP(w, r)
		return
	}
	body, err := c.readBody(w, r)
	if err != nil {
		writeResponse(w, c.cfg.bodyProblem(err).response().replayed(false))
		return
	}
	in := Incoming{
		Method:  r.Method,
		Route:   c.cfg.routeOf(r),
		Path:    r.URL.EscapedPath(),
		Bytes:   body,
		Query:   RawQuery(r.URL.RawQuery, nil),
		Headers: stdHeader(r.Header),
		Event:   r,
	}
	var rec *recorder
	resp, _ := c.Serve(r.Context(), in, func(ctx context.Context) (Response, error) {
		rec = &recorder{w: w, header: http.Header{}}
		next.ServeHTTP(rec, r.WithContext(ctx))
		return rec.response(), nil // a net/http handler has no error to return; a panic goes on up
	})
	if rec != nil && rec.sent {
		return // streamed or hijacked: the client has had all of it, and nothing can follow
	}
	writeResponse(w, resp)
}

// readBody reads the body, at most cfg.maxBody bytes of it, and puts the bytes back in r.Body for the handler.
func (c *Core) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return []byte{}, nil
	}
	// Sized by Content-Length when it is declared and within the bound, so that a body is read into one
	// allocation rather than grown into one; MinRead more keeps ReadFrom from growing it to find the end.
	size := int64(bytes.MinRead)
	if n := r.ContentLength; n > 0 && n <= c.cfg.maxBody {
		size += n
	}
	buf := bytes.NewBuffer(make([]byte, 0, size))
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, c.cfg.maxBody))
	_ = r.Body.Close()
	if err != nil {
		return nil, err
	}
	body := buf.Bytes()
	r.Body = io.NopCloser(bytes.NewReader(body))
	return body, nil
}

// bodyProblem answers a body that could not be read: 413 past the bound, else 400 (the client went away or sent a
// malformed chunked body; no one may be listening, but the answer is still a problem).
func (c *config) bodyProblem(err error) *problemResponse {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return c.problem(http.StatusRequestEntityTooLarge, "body-too-large", "Request body too large",
			fmt.Sprintf("The request body is larger than the %d bytes this service reads. Send a smaller body.",
				tooLarge.Limit), 0)
	}
	return c.problem(http.StatusBadRequest, "body-unreadable", "Request body unreadable",
		"The request body could not be read to the end. Send the request again.", 0)
}

// routeOf is the route of a net/http request: WithRouteFunc's, else the pattern the standard ServeMux matched,
// without its method ("POST /payments/{id}" -> "/payments/{id}": the method is in the scope already), else the
// path.
func (c *config) routeOf(r *http.Request) string {
	route := r.Pattern
	if c.routeFunc != nil {
		route = c.routeFunc(r)
	}
	if i := strings.IndexAny(route, " \t"); i >= 0 {
		route = strings.TrimLeft(route[i:], " \t")
	}
	if route == "" {
		return r.URL.EscapedPath()
	}
	return route
}

// recorder buffers a handler's response for the core, and passes it through once the handler flushes or hijacks.
type recorder struct {
	w      http.ResponseWriter
	header http.Header
	status int
	body   bytes.Buffer
	// sent: the response went to the client (flushed or hijacked), so it must not be recorded or written again.
	sent bool
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	// Informational responses (103 Early Hints...) are neither recorded nor sent: the final one is what a replay
	// must reproduce. Only the first final status counts, as in net/http. Once the response went out (pass), a
	// status is too late, as after a flush in net/http, whose Flush sends 200 when no status was set.
	if r.status != 0 || (status >= 100 && status < 200) {
		return
	}
	r.status = status
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.WriteHeader(http.StatusOK)
	}
	if r.sent {
		return r.w.Write(p)
	}
	return r.body.Write(p)
}

// Flush sends what the handler wrote so far, and makes the response a stream (see Middleware).
func (r *recorder) Flush() {
	r.pass()
	_ = http.NewResponseController(r.w).Flush() // a writer that cannot flush still gets every byte
}

// Hijack hands the connection over to the handler; the response is then the handler's alone (see Middleware).
func (r *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(r.w).Hijack()
	if err == nil {
		r.sent = true
	}
	return conn, rw, err
}

// Unwrap lets http.ResponseController reach the server's writer for what the recorder does not intercept
// (deadlines, full duplex).
func (r *recorder) Unwrap() http.ResponseWriter { return r.w }

// pass writes the buffered response to the client once, and every later write straight through.
func (r *recorder) pass() {
	if r.sent {
		return
	}
	r.sent = true
	h := r.w.Header()
	for k, v := range r.header {
		h[k] = v
	}
	h.Set(ReplayedHeader, "false")
	if r.status != 0 {
		r.w.WriteHeader(r.status)
	}
	if r.body.Len() > 0 {
		_, _ = r.w.Write(r.body.Bytes())
	}
}

// response is what the handler answered, in the recorded form: headers as the handler set them, the body in base64
// when it is not UTF-8 (which JSON could not carry byte for byte).
func (r *recorder) response() Response {
	if r.sent {
		return Response{StatusCode: r.status, noRecord: true}
	}
	resp := Response{StatusCode: r.status, MultiValueHeaders: map[string][]string(r.header)}
	if resp.StatusCode == 0 {
		resp.StatusCode = http.StatusOK // a handler that writes nothing answers 200, as net/http does
	}
	if b := r.body.Bytes(); utf8.Valid(b) {
		resp.Body = string(b)
	} else {
		resp.Body, resp.IsBase64Encoded = base64.StdEncoding.EncodeToString(b), true
	}
	return resp
}

// writeResponse writes resp to w: its headers over those already set, its cookies as Set-Cookie, its status and
// its body.
func writeResponse(w http.ResponseWriter, resp Response) {
	h := w.Header()
	for k, v := range resp.MultiValueHeaders {
		h[k] = append([]string(nil), v...)
	}
	for k, v := range resp.Headers {
		h[k] = []string{v}
	}
	for _, c := range resp.Cookies {
		h.Add("Set-Cookie", c)
	}
	w.WriteHeader(resp.StatusCode)
	body := []byte(resp.Body)
	if resp.IsBase64Encoded {
		if b, err := base64.StdEncoding.DecodeString(resp.Body); err == nil {
			body = b
		}
	}
	_, _ = w.Write(body)
}
