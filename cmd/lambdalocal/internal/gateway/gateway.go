package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/idemkit/idemkit/cmd/lambdalocal/internal/runtimeapi"
)

// Limits of API Gateway REST APIs.
const (
	// MaxBody is the largest request body API Gateway accepts (10 MB).
	MaxBody = 10 * 1024 * 1024
	// DefaultIntegrationTimeout is API Gateway's default integration timeout.
	DefaultIntegrationTimeout = 29 * time.Second
)

// Invoker runs a function once; *runtimeapi.Pool is one.
type Invoker interface {
	Invoke(ctx context.Context, payload []byte, opts runtimeapi.InvokeOptions) (*runtimeapi.Result, error)
}

// Gateway serves a template's routes over HTTP.
type Gateway struct {
	// Router matches requests to routes.
	Router *Router
	// Functions invoked by name.
	Functions map[string]Invoker
	// Stage names the stage in requestContext; empty means "Prod".
	Stage string
	// BinaryMediaTypes are Content-Types whose bodies reach the function base64-encoded.
	BinaryMediaTypes []string
	// IntegrationTimeout ends the wait for a function with 504. Zero means 29s.
	IntegrationTimeout time.Duration
	// BodyTimeout ends the wait for a request body that stops arriving with 408. Zero means DefaultBodyTimeout.
	BodyTimeout time.Duration
	// Log receives one line per request. Nil discards.
	Log io.Writer
	// Now is the clock for requestTimeEpoch; nil means time.Now.
	Now func() time.Time

	logMu sync.Mutex
}

func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	requestID := runtimeapi.NewRequestID()
	w.Header().Set("X-Amzn-Requestid", requestID)
	status, target := g.serve(w, r, requestID)
	g.logf("%s %s %s -> %s %d %s", requestID, r.Method, r.URL.RequestURI(), target, status, time.Since(start).Round(time.Millisecond))
}

func (g *Gateway) serve(w http.ResponseWriter, r *http.Request, requestID string) (status int, target string) {
	target = "-"
	if headerSize(r) > MaxHeaderBytes {
		return gatewayError(w, http.StatusRequestHeaderFieldsTooLarge, "", "Request Header Fields Too Large"), target
	}
	if r.ContentLength > MaxBody {
		return tooLong(w), target
	}
	bodyTimeout := g.BodyTimeout
	if bodyTimeout <= 0 {
		bodyTimeout = DefaultBodyTimeout
	}
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(bodyTimeout)) // unsupported only by test recorders: then no bound
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	if err != nil {
		// The deadline stays: the server then gives up on the rest of the body at once instead of waiting for it
		// to discard it, and closes the connection.
		w.Header().Set("Connection", "close")
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return gatewayError(w, http.StatusRequestTimeout, "", "Request Timeout"), target
		}
		return gatewayError(w, http.StatusBadRequest, "", "Bad Request"), target
	}
	_ = rc.SetReadDeadline(time.Time{})
	if len(body) > MaxBody {
		return tooLong(w), target
	}
	route, params, ok := g.Router.Match(r.Method, r.URL.Path)
	if !ok && g.Router.HTTPAPIOnly() {
		return httpAPIError(w, http.StatusNotFound, "Not Found"), target
	}
	if !ok {
		return gatewayError(w, http.StatusForbidden, "MissingAuthenticationTokenException", "Missing Authentication Token"), target
	}
	target = fmt.Sprintf("%s (%s %s)", route.Function, route.Method, route.Path)
	fn, ok := g.Functions[route.Function]
	if !ok {
		return gatewayError(w, http.StatusInternalServerError, "", "Internal server error"), target
	}
	now := time.Now
	if g.Now != nil {
		now = g.Now
	}
	if route.HTTPAPI {
		return g.serveHTTPAPI(w, r, body, fn, RequestInfo{
			Route: route, PathParameters: params, RequestID: requestID, Time: now(),
		}), target
	}
	ev := NewEvent(r, body, RequestInfo{
		Route: route, PathParameters: params, RequestID: requestID, Stage: g.Stage,
		Time: now(), BinaryMediaTypes: g.BinaryMediaTypes,
	})
	payload, err := json.Marshal(ev)
	if err != nil {
		return gatewayError(w, http.StatusInternalServerError, "", "Internal server error"), target
	}
	if len(payload) > runtimeapi.MaxPayload {
		// The body fits API Gateway but the event does not fit Lambda's invocation limit.
		return gatewayError(w, http.StatusRequestEntityTooLarge, "BadRequestException", "Request Too Long"), target
	}
	timeout := g.IntegrationTimeout
	if timeout <= 0 {
		timeout = DefaultIntegrationTimeout
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	res, err := fn.Invoke(ctx, payload, runtimeapi.InvokeOptions{RequestID: requestID})
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return gatewayError(w, http.StatusGatewayTimeout, "", "Endpoint request timed out"), target
	case r.Context().Err() != nil:
		return 499, target // the client went away; nobody to answer
	case err != nil:
		g.logf("%s invoke %s: %v", requestID, route.Function, err)
		return gatewayError(w, http.StatusInternalServerError, "", "Internal server error"), target
	case res.Failed():
		g.logf("%s %s failed: %s", requestID, route.Function, truncate(res.Payload, 512))
		return gatewayError(w, http.StatusBadGateway, "", "Internal server error"), target
	}
	resp, err := ParseResponse(res.Payload)
	if err != nil {
		g.logf("%s %s: %v", requestID, route.Function, err)
		return gatewayError(w, http.StatusBadGateway, "", "Internal server error"), target
	}
	resp.Write(w)
	return resp.StatusCode, target
}

// gatewayError writes one of API Gateway's own JSON answers.
func gatewayError(w http.ResponseWriter, code int, errType, msg string) int {
	w.Header().Set("Content-Type", "application/json")
	if errType != "" {
		w.Header().Set("X-Amzn-Errortype", errType)
	}
	w.WriteHeader(code)
	b, _ := json.Marshal(map[string]string{"message": msg})
	_, _ = w.Write(b)
	return code
}

// headerSize is the size of the request line and headers as API Gateway counts them against MaxHeaderBytes.
func headerSize(r *http.Request) int {
	n := len(r.Method) + 1 + len(r.RequestURI) + 1 + len(r.Proto) + 2
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + 2 + len(v) + 2
		}
	}
	return n + len(r.Host) + len("Host: \r\n")
}

// tooLong is the edge's answer to a body over 10 MB: plain text, not JSON. This one answer of API Gateway is not
// a gateway response: its edge writes "HTTP content length exceeded 10485760 bytes." as text/plain.
func tooLong(w http.ResponseWriter) int {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusRequestEntityTooLarge)
	_, _ = io.WriteString(w, "HTTP content length exceeded "+strconv.Itoa(MaxBody)+" bytes.")
	return http.StatusRequestEntityTooLarge
}

func (g *Gateway) logf(format string, args ...any) {
	if g.Log == nil {
		return
	}
	g.logMu.Lock()
	defer g.logMu.Unlock()
	fmt.Fprintf(g.Log, time.Now().Format("2006/01/02 15:04:05.000 ")+format+"\n", args...)
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}
