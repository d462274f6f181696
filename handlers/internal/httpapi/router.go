package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/aws/aws-lambda-go/events"
)

// HandlerFunc handles one route. It answers every outcome with a response, never with an error.
type HandlerFunc func(ctx context.Context, req events.APIGatewayProxyRequest) events.APIGatewayProxyResponse

// Route binds a REST API resource template (e.g. "/payments/{id}", as in req.Resource) and a method to a handler.
type Route struct {
	Resource string
	Method   string
	Handler  HandlerFunc
}

// Router dispatches REST (v1) proxy events on req.Resource and req.HTTPMethod, the route template API Gateway
// matched, rather than on the concrete path: the template is what the function was deployed for.
type Router struct {
	routes map[string]map[string]HandlerFunc
	logger *slog.Logger
}

// NewRouter returns a router over routes. logger receives recovered panics; nil means slog.Default().
func NewRouter(logger *slog.Logger, routes ...Route) *Router {
	if logger == nil {
		logger = slog.Default()
	}
	r := &Router{routes: make(map[string]map[string]HandlerFunc), logger: logger}
	for _, rt := range routes {
		byMethod := r.routes[rt.Resource]
		if byMethod == nil {
			byMethod = make(map[string]HandlerFunc)
			r.routes[rt.Resource] = byMethod
		}
		byMethod[strings.ToUpper(rt.Method)] = rt.Handler
	}
	return r
}

// Handle is the Lambda handler: unknown resource -> 404, known resource with another method -> 405 with Allow.
// A panic in a handler becomes a 500 problem (logged with the route, never with the request body), so the client
// gets problem+json instead of API Gateway's bare 502 and the idempotency layer releases the key.
func (r *Router) Handle(ctx context.Context, req events.APIGatewayProxyRequest) (resp events.APIGatewayProxyResponse, err error) {
	byMethod, ok := r.routes[req.Resource]
	if !ok {
		// The path is the client's text: a card number in it does not come back.
		return NotFound("No resource matches " + req.HTTPMethod + " " + RedactCardNumbers(req.Path) + ".").Response(), nil
	}
	h, ok := byMethod[strings.ToUpper(req.HTTPMethod)]
	if !ok {
		allow := make([]string, 0, len(byMethod))
		for m := range byMethod {
			allow = append(allow, m)
		}
		slices.Sort(allow)
		return MethodNotAllowed(req.HTTPMethod, allow).Response(), nil
	}
	defer func() {
		if v := recover(); v != nil {
			r.logger.ErrorContext(ctx, "handler panicked", "resource", req.Resource, "method", req.HTTPMethod,
				"panic_type", typeName(v), "stack", string(debug.Stack()))
			resp, err = Internal().Response(), nil
		}
	}()
	return h(ctx, req), nil
}

// typeName names a panic value's type without formatting the value, which could hold request data.
func typeName(v any) string {
	switch v.(type) {
	case error:
		return "error"
	case string:
		return "string"
	default:
		return "other"
	}
}

// Header returns the values of a request header, matched case-insensitively over both the single- and the
// multi-value maps (REST events keep the client's case). Values are de-duplicated, as API Gateway repeats the last
// value of a multi-value header in Headers.
func Header(req events.APIGatewayProxyRequest, name string) []string {
	var vals []string
	for k, vs := range req.MultiValueHeaders {
		if strings.EqualFold(k, name) {
			vals = append(vals, vs...)
		}
	}
	if len(vals) > 0 {
		return vals
	}
	for k, v := range req.Headers {
		if strings.EqualFold(k, name) {
			vals = append(vals, v)
		}
	}
	return vals
}

// Created is the 201 response with a Location header.
func Created(location string, v any) events.APIGatewayProxyResponse {
	return JSON(http.StatusCreated, v, map[string]string{"Location": location})
}
