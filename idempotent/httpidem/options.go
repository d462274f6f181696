package httpidem

import (
	"context"
	"net/http"
)

// DefaultKeyHeader is the header the key is read from unless another source is configured.
const DefaultKeyHeader = "Idempotency-Key"

// ReplayedHeader is set on every response of a wrapped route: "true" on a replay of a recorded response, "false"
// otherwise (first execution, problem responses, pass-through).
const ReplayedHeader = "Idempotent-Replayed"

// Request is the core's view of an HTTP request, the same for every front end. Key and principal functions
// receive it; treat it as read-only.
type Request struct {
	// Method is the HTTP method in upper case.
	Method string
	// Route is the route the key is scoped to: the resource template for REST APIs ("/payments/{id}"), the path part
	// of the route key for HTTP APIs (the raw path for the "$default" route), the raw path for Function URLs; for the
	// middleware the pattern the standard ServeMux matched (without its method), the value of WithRouteFunc, or the
	// path; or the value given to WithRoute.
	Route string
	// Path is the request's concrete path: the path of REST events, the raw path of HTTP API and Function URL
	// events, the escaped URL path of a net/http request. The fingerprint covers it, so the same key sent to
	// /orders/1 and /orders/2 is a mismatch.
	Path string
	// Header holds every header value under its canonical name. HTTP APIs and Function URLs join repeated headers
	// with commas before the function sees them; REST APIs and net/http deliver them separately.
	Header http.Header
	// Body is the request body, decoded from base64 when the event says it is encoded.
	Body []byte
	// Principal is the caller the front end found: for API Gateway events the authorizer's, namespaced by its source
	// (see the apigw package), or "" when there is none; always "" under the middleware, which knows no
	// authentication (name the caller with WithPrincipal).
	Principal string
	// Event is the original request: an events.APIGatewayProxyRequest, events.APIGatewayV2HTTPRequest or
	// events.LambdaFunctionURLRequest for the apigw adapters, the *http.Request for the middleware.
	Event any

	// headers reads header values without building Header (see Headers).
	headers Headers
	// body is the body as the event carries it; Body holds it decoded when decoded is set. Header, Event and Body
	// are built only when something reads them (key and principal functions, a key in a body field, selected
	// payload fields, a base64 body), which saves a map, a slice per header, a copy of the event and a copy of the
	// body on every request.
	body    string
	decoded bool
	// query is the query string's part of the fingerprint (see RawQuery and MapsQuery).
	query string
	// legacyPrincipal is the principal WithLegacyScope puts in the scope.
	legacyPrincipal string
	// legacy computes the version 1 fingerprint when the engine meets a record of an earlier release.
	legacy legacySource
}

// Option configures a front end: the middleware or an apigw adapter.
type Option func(*config)

type keySource uint8

const (
	keyFromHeader keySource = iota
	keyFromField
	keyFromFunc
)

type config struct {
	source      keySource
	header      string
	field       string
	keyFunc     func(context.Context, *Request) (string, error)
	keyOptional bool
	record      func(status int) bool
	fields      []string
	principal   func(context.Context, *Request) string
	route       string
	typeBase    string
	// function is the function name in the scope; fpHeaders the headers the fingerprint covers.
	function  string
	fpHeaders []string
	// requireIdempotent requires keys on PUT and DELETE (see policyFor).
	requireIdempotent bool
	// legacyScope derives record IDs as releases before the function and namespaced principals did.
	legacyScope bool
	// merged runs the handler before the claim (WithMergedClaim).
	merged bool
	// routeFunc names the route of a net/http request (WithRouteFunc); maxBody bounds the body it reads.
	routeFunc func(*http.Request) string
	maxBody   int64
}

// needsRequest reports whether user code sees the Request (a key or principal function), so that the front end
// hands over its Event and the core builds its Header.
func (c *config) needsRequest() bool { return c.keyFunc != nil || c.principal != nil }

// needsBody reports whether the body is read as bytes: by user code, for a key in a body field or for selected
// payload fields.
func (c *config) needsBody() bool {
	return c.needsRequest() || c.source == keyFromField || len(c.fields) > 0
}

func newConfig(opts []Option) *config {
	c := &config{
		header:   DefaultKeyHeader,
		record:   DefaultRecordStatus,
		typeBase: DefaultProblemTypeBase,
		function: defaultFunctionName(),
		maxBody:  DefaultMaxBodyBytes,
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// WithKeyHeader reads the key from the named header, matched case-insensitively. Default: DefaultKeyHeader
// ("Idempotency-Key"). The last of WithKeyHeader, WithKeyField and WithKeyFunc wins.
func WithKeyHeader(name string) Option {
	return func(c *config) {
		if name != "" {
			c.source, c.header = keyFromHeader, name
		}
	}
}

// WithKeyField reads the key from a dot-separated path of the JSON request body, such as "idempotencyKey" for a
// body {"idempotencyKey": "...", "data": {...}}. A string is used as it is and a number as written; a missing
// field, JSON null or a body that is not JSON means no key; an object, array or bool is a malformed key.
// Default: the key comes from the header.
func WithKeyField(path string) Option {
	return func(c *config) {
		if path != "" {
			c.source, c.field = keyFromField, path
		}
	}
}

// WithKeyFunc computes the key from the request. Returning "" means the request carries no key. An error makes
// the request a 400 whose detail is the Reason of an *idempotent.KeyError in the error's chain, or a generic
// sentence for any other error (its text is never shown to the client). Default: the key comes from the header.
func WithKeyFunc(fn func(ctx context.Context, r *Request) (string, error)) Option {
	return func(c *config) {
		if fn != nil {
			c.source, c.keyFunc = keyFromFunc, fn
		}
	}
}

// WithKeyOptional lets requests without a key through to the handler with no idempotency (their responses carry
// Idempotent-Replayed: false and are not recorded). A key that is present but malformed is still refused with 400.
// It applies to every method and takes precedence over WithKeyRequiredForPutAndDelete. Default: the key is
// required on every method except GET, HEAD, OPTIONS and TRACE (never recorded) and PUT and DELETE (recorded with a
// key, run straight through without one).
func WithKeyOptional() Option { return func(c *config) { c.keyOptional = true } }

// WithKeyRequiredForPutAndDelete refuses PUT and DELETE requests without a key with 400, as for POST. Default: PUT
// and DELETE, idempotent by HTTP semantics, run straight through without a key and are recorded with one.
func WithKeyRequiredForPutAndDelete() Option { return func(c *config) { c.requireIdempotent = true } }

// WithFunctionName sets the function name that scopes keys, so that functions sharing one idempotency table never
// answer each other's requests (an event that reaches the wrong function is a new record there, not a replay of
// the other function's response). For a server, name the service: several services sharing a table need distinct
// names. Default: the AWS_LAMBDA_FUNCTION_NAME environment variable, which Lambda sets (also under the Lambda Web
// Adapter), else "".
// "" leaves the function out of the scope (record IDs are then those of releases before the function was part of
// it, for a migration: see the README's upgrade notes).
func WithFunctionName(name string) Option { return func(c *config) { c.function = name } }

// WithLegacyScope derives record IDs as releases before this one did: no function in the scope, principals without
// their source namespace ("iam:arn:..." is "arn:..."), and an authorizer without a known principal field counted as
// "anonymous". It exists for upgrades: the scope is part of a record's ID, so after an upgrade without it a retry
// of a request recorded before the upgrade does not find its record and runs the handler again. Deploy with it for
// one retention period, then remove it (each removal is again such a boundary, for the records written with it).
// While it is on, the shared scopes this release closes are open again: functions sharing a table, callers behind
// Lambda authorizers without principalId, a principalId equal to "anonymous" or to another source's value.
// Fingerprints are unaffected (records of either version compare correctly). Default: off.
func WithLegacyScope() Option { return func(c *config) { c.legacyScope = true } }

// WithFingerprintHeaders adds the named headers (matched case-insensitively, every value in order) to the
// fingerprint, for handlers whose result depends on them (a tenant or API version header, say). Default: no header
// is covered, because headers change between retries of one request without changing its meaning (tracing ids,
// dates, refreshed tokens, proxies' forwarding headers), and a retry must not become a mismatch.
func WithFingerprintHeaders(names ...string) Option {
	return func(c *config) { c.fpHeaders = append(c.fpHeaders, names...) }
}

// WithRecordStatus decides by status code which handler responses are recorded for replay; for the others the
// key is released so that a corrected request can use it again. Default: DefaultRecordStatus.
func WithRecordStatus(fn func(status int) bool) Option {
	return func(c *config) {
		if fn != nil {
			c.record = fn
		}
	}
}

// WithPayloadFields fingerprints only the given dot-separated paths of the JSON body (see
// idempotent.SelectFields) instead of the whole body, so that fields which legitimately differ between retries
// (a client timestamp, a trace id) do not make a retry a mismatch. A body that is not JSON is fingerprinted whole.
// Default: the whole body.
func WithPayloadFields(paths ...string) Option {
	return func(c *config) { c.fields = append(c.fields, paths...) }
}

// WithPrincipal replaces the principal the key is scoped to. fn sees the principal found in the authorizer
// context in r.Principal (namespaced, "" without an authorizer) and may return it, refine it or replace it; ""
// means "anonymous". Default: the principal from the authorizer context (see the package documentation).
func WithPrincipal(fn func(ctx context.Context, r *Request) string) Option {
	return func(c *config) { c.principal = fn }
}

// WithRoute scopes keys to route instead of the route the event names. Use it for Function URLs, which have no
// route templates, when one function serves paths with identifiers in them ("/orders/123") and keys should be
// shared across them: the concrete path stays in the fingerprint, so a key reused on another path is a 422 rather
// than a new record. Default: the event's route (see Request.Route).
func WithRoute(route string) Option { return func(c *config) { c.route = route } }

// WithMergedClaim runs the handler before the key is claimed and then claims and records it in one store call
// with the handler's effects (idempotent.Spec.MergeClaim): a first request costs one DynamoDB call instead of two.
// Use it only when every side effect of the handler is a store write handed over with idempotent.AddEffect (with
// dynamostore: dynamostore.Put and friends) and the handler calls nothing outside: concurrent first requests each
// run the handler, and only their effects are guaranteed to commit once. Default: claim first, then run the handler.
func WithMergedClaim() Option { return func(c *config) { c.merged = true } }

// WithRouteFunc names the route a net/http request is scoped to, for routers other than the standard ServeMux
// (chi's RouteContext, gorilla/mux's CurrentRoute...), or for a middleware wrapping a whole ServeMux (whose
// Request.Pattern is set only inside it: func(r *http.Request) string { _, p := mux.Handler(r); return p }). A
// result with a method ("POST /payments/{id}") is scoped without it, as Request.Pattern is; "" falls back to the
// path. The API Gateway adapters ignore it: their events name the route. Default: Request.Pattern, else the path.
func WithRouteFunc(fn func(r *http.Request) string) Option {
	return func(c *config) { c.routeFunc = fn }
}

// DefaultMaxBodyBytes is the default bound of the body the middleware reads: 6 MiB, the payload limit of a
// synchronous Lambda invocation.
const DefaultMaxBodyBytes = 6 << 20

// WithMaxBodyBytes bounds the request body the middleware reads to fingerprint it; a longer body is answered 413
// without running the handler. n <= 0 keeps the default. The API Gateway adapters ignore it: API Gateway and
// Lambda bound their events. Default: DefaultMaxBodyBytes.
func WithMaxBodyBytes(n int64) Option {
	return func(c *config) {
		if n > 0 {
			c.maxBody = n
		}
	}
}

// WithProblemTypeBase sets the URI prefix of the "type" member of the problem responses the front end writes; the
// problem's slug ("in-progress", "payload-mismatch", ...) is appended. Default: DefaultProblemTypeBase.
func WithProblemTypeBase(base string) Option {
	return func(c *config) {
		if base != "" {
			c.typeBase = base
		}
	}
}

// DefaultRecordStatus is the default record policy: 2xx, 3xx and 4xx responses are recorded, except 400, 408, 422,
// 425 and 429, which say the request itself must change or be retried later; 1xx, 5xx and anything outside
// 100-599 are not recorded. Recording 3xx (not named by the contract) keeps a "303 See Other" that follows a
// completed operation from running it again.
func DefaultRecordStatus(status int) bool {
	switch {
	case status >= 200 && status < 400:
		return true
	case status >= 400 && status < 500:
		switch status {
		case http.StatusBadRequest, http.StatusRequestTimeout, http.StatusUnprocessableEntity, http.StatusTooEarly,
			http.StatusTooManyRequests:
			return false
		}
		return true
	default:
		return false
	}
}
