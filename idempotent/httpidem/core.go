package httpidem

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/idemkit/idemkit/idempotent"
)

const anonymous = "anonymous"

// storeRetryAfter is the Retry-After of a 503 after a store failure: the SDK has already retried, so the store is
// having a bad moment and an immediate retry would likely fail too.
const storeRetryAfter = 2 * time.Second

// handlerError marks an error returned by the user's handler, so it can be told apart from the engine's own
// errors even if it happens to wrap one of them, and returned unchanged.
type handlerError struct{ err error }

func (e *handlerError) Error() string { return e.err.Error() }

// Core holds the HTTP semantics every front end shares: key extraction and grammar, the method and record
// policies, the scope, the fingerprint's inputs, the mapping of outcomes to problems and the recorded response.
// The middleware is built on it, and so are the apigw adapters, which only translate their events; another front
// end (a Lambda adapter for another event type) can be too. Its methods are safe for concurrent use.
type Core struct {
	e   *idempotent.Engine
	cfg *config
}

// NewCore returns the core for engine e configured by opts.
func NewCore(e *idempotent.Engine, opts ...Option) *Core { return &Core{e: e, cfg: newConfig(opts)} }

// Incoming is what a front end hands the core about one request.
type Incoming struct {
	// Method is the HTTP method, any case; Route, Path and Principal are those of Request.
	Method, Route, Path, Principal string
	// LegacyPrincipal is the principal releases before namespaced principals derived from the same caller, for
	// WithLegacyScope: "" names the anonymous scope.
	LegacyPrincipal string
	// Body is the body as the event carries it, in base64 when Base64 is set. Bytes, when not nil, is the body
	// itself (Body and Base64 are then ignored): the middleware has read it as bytes.
	Body   string
	Base64 bool
	Bytes  []byte
	// Query is the query string's part of the fingerprint: RawQuery or MapsQuery of the request's query.
	Query string
	// Headers reads the request's header values.
	Headers Headers
	// Event is the original request, for key and principal functions; the front end may leave it nil unless
	// NeedsEvent reports true, to save its copy.
	Event any
}

// Headers reads a request's headers by name, matched case-insensitively.
type Headers interface {
	// Values returns every value of the header name, in order, as http.Header.Values does.
	Values(name string) []string
	// Header returns all the headers under their canonical names. It is called only for key and principal
	// functions, so a front end can keep its own form and build this one on demand.
	Header() http.Header
}

// HeaderOf returns the Headers of an http.Header.
func HeaderOf(h http.Header) Headers { return stdHeader(h) }

type stdHeader http.Header

func (h stdHeader) Values(name string) []string { return http.Header(h).Values(name) }
func (h stdHeader) Header() http.Header         { return http.Header(h) }

// NeedsEvent reports whether the request's Event reaches user code (a key or principal function), so that the
// front end must fill Incoming.Event.
func (c *Core) NeedsEvent() bool { return c.cfg.needsRequest() }

// passes reports whether a request with method m runs straight through: the engine is disabled, or the method is
// safe (policyFor). Safe methods have no side effects to protect, and replaying a read would serve stale data.
func (c *Core) passes(m string) bool {
	return c.e.Disabled() || policyFor(m, c.cfg.keyOptional, c.cfg.requireIdempotent) == passThrough
}

// Serve runs one request through the engine, call running the handler, and turns every outcome into a response
// carrying Idempotent-Replayed; it returns the handler's own error unchanged (the key is then released).
func (c *Core) Serve(ctx context.Context, in Incoming, call func(context.Context) (Response, error)) (Response, error) {
	if c.passes(in.Method) {
		resp, err := call(ctx)
		if err != nil {
			return resp, err
		}
		return resp.replayed(false), nil
	}
	cfg := c.cfg
	r := &Request{
		Method:          strings.ToUpper(in.Method),
		Route:           in.Route,
		Path:            in.Path,
		Principal:       in.Principal,
		headers:         in.Headers,
		body:            in.Body,
		query:           in.Query,
		legacyPrincipal: in.LegacyPrincipal,
	}
	switch {
	case in.Bytes != nil:
		r.Body, r.decoded = in.Bytes, true
	case in.Base64 || cfg.needsBody():
		r.Body, r.decoded = decodeBody(in.Body, in.Base64), true
	}
	if cfg.needsRequest() {
		r.Header, r.Event = in.Headers.Header(), in.Event
	}
	return c.serve(ctx, r, call)
}

func (c *Core) serve(ctx context.Context, r *Request, call func(context.Context) (Response, error)) (Response, error) {
	e, cfg := c.e, c.cfg
	policy := policyFor(r.Method, cfg.keyOptional, cfg.requireIdempotent)
	if cfg.route != "" {
		r.Route = cfg.route
	}
	function := cfg.function
	if cfg.legacyScope {
		function, r.Principal = "", r.legacyPrincipal
	}
	if cfg.principal != nil {
		r.Principal = cfg.principal(ctx, r)
	}
	if r.Principal == "" {
		r.Principal = anonymous
	}

	spec := idempotent.Spec[Response]{
		Codec:      responseCodec{},
		Record:     func(resp Response) bool { return !resp.noRecord && cfg.record(resp.StatusCode) },
		MergeClaim: cfg.merged,
	}
	scope := idempotent.Scope{Function: function, Principal: r.Principal, Method: r.Method, Route: r.Route}
	key, refusal := cfg.key(ctx, r)
	if refusal != "" {
		// Counted and logged by the engine like its own refusals.
		return cfg.invalidKey(e.InvalidKey(ctx, refusal).Reason).response().replayed(false), nil
	}
	req := idempotent.Request{
		Key:         key,
		KeyOptional: policy == keyOptional,
		Scope:       scope,
	}
	if key != "" {
		// A request without a key is not fingerprinted: it runs straight through or is refused.
		req.Fingerprint = r.fingerprint(cfg)
		r.legacy = legacySource{r, cfg}
		req.LegacyFingerprint = &r.legacy // r is on the heap already: no allocation, where a closure was one
	}
	res, err := idempotent.Run(ctx, e, req, spec, func(ctx context.Context) (Response, error) {
		resp, err := call(ctx)
		if err != nil {
			return resp, &handlerError{err}
		}
		return resp, nil
	})
	if err != nil {
		var he *handlerError
		if errors.As(err, &he) {
			return res.Value, he.err
		}
		return cfg.problemFor(err).response().replayed(false), nil
	}
	return res.Value.replayed(res.Replayed()), nil
}

// payload returns what the fingerprint covers: the body, or the selected fields of a JSON body.
func (c *config) payload(body []byte) []byte {
	if len(c.fields) == 0 {
		return body
	}
	sel, err := idempotent.SelectFields(body, c.fields)
	if err != nil {
		return body
	}
	return sel
}

// key extracts the idempotency key. A key that is present but unusable in a way the engine cannot see (several
// values, empty, unreadable) is answered here with a 400; grammar errors are left to the engine so its metrics
// count them.
func (c *config) key(ctx context.Context, r *Request) (key, refusal string) {
	switch c.source {
	case keyFromFunc:
		k, err := c.keyFunc(ctx, r)
		if err != nil {
			reason := "it could not be read from the request"
			var ke *idempotent.KeyError
			if errors.As(err, &ke) {
				reason = ke.Reason
			}
			return "", reason
		}
		return k, ""
	case keyFromField:
		k, found, err := idempotent.JSONField(r.Body, c.field)
		var ke *idempotent.KeyError
		switch {
		case errors.As(err, &ke):
			return "", ke.Reason
		case err != nil || !found:
			return "", "" // no JSON body or no field: no key, which the engine judges against KeyOptional
		case k == "":
			return "", "empty"
		}
		return k, ""
	default:
		vals := r.headers.Values(c.header)
		switch {
		case len(vals) == 0:
			return "", ""
		case len(vals) > 1:
			return "", "several values"
		}
		k := strings.Trim(vals[0], " \t")
		switch {
		case k == "":
			return "", "empty"
		case strings.Contains(k, ","):
			// HTTP APIs and Function URLs join repeated headers with commas, so a comma cannot be told apart from
			// two values; refusing it everywhere keeps a key valid on every event type alike.
			return "", "several values (a key cannot contain a comma)"
		}
		return k, ""
	}
}

// keyName describes where the key comes from, for problem details.
func (c *config) keyName() string {
	switch c.source {
	case keyFromField:
		return fmt.Sprintf("idempotency key (body field %q)", c.field)
	case keyFromFunc:
		return "idempotency key"
	default:
		return http.CanonicalHeaderKey(c.header) + " header"
	}
}

// problemResponse is a Problem plus the headers that go with it.
type problemResponse struct {
	Problem
	retryAfter time.Duration
}

func (p *problemResponse) response() Response {
	r := p.Problem.Response()
	if p.retryAfter > 0 {
		secs := int64((p.retryAfter + time.Second - 1) / time.Second)
		r.Headers["Retry-After"] = strconv.FormatInt(max(secs, 1), 10)
	}
	return r
}

func (c *config) problem(status int, slug, title, detail string, retryAfter time.Duration) *problemResponse {
	return &problemResponse{
		Problem:    Problem{Type: c.typeBase + slug, Title: title, Status: status, Detail: detail},
		retryAfter: retryAfter,
	}
}

func (c *config) invalidKey(reason string) *problemResponse {
	return c.problem(http.StatusBadRequest, "invalid-key", "Invalid idempotency key",
		fmt.Sprintf("The %s is invalid: %s. A key is 1 to %d visible ASCII characters.", c.keyName(), reason,
			idempotent.MaxKeyLength), 0)
}

// problemFor maps an engine error to its problem. It never shows the error's text: store errors carry internal
// detail, and nothing of another request's response may leak.
func (c *config) problemFor(err error) *problemResponse {
	var inProgress *idempotent.InProgressError
	var keyErr *idempotent.KeyError
	switch {
	case errors.As(err, &inProgress):
		return c.problem(http.StatusConflict, "in-progress", "Request in progress",
			"A request with this idempotency key is still being processed. Retry after the number of seconds in "+
				"the Retry-After header to get its response.", inProgress.RetryAfter)
	case errors.Is(err, idempotent.ErrMissingKey):
		return c.problem(http.StatusBadRequest, "missing-key", "Idempotency key required",
			fmt.Sprintf("This operation requires an %s.", c.keyName()), 0)
	case errors.As(err, &keyErr):
		return c.invalidKey(keyErr.Reason)
	case errors.Is(err, idempotent.ErrPayloadMismatch):
		return c.problem(http.StatusUnprocessableEntity, "payload-mismatch", "Idempotency key reused",
			"This idempotency key was already used with a different request. Use a new key for a new request.", 0)
	case errors.Is(err, idempotent.ErrOutcomeUnknown):
		return c.problem(http.StatusConflict, "outcome-unknown", "Outcome unknown",
			"An earlier request with this idempotency key stopped before it finished, so whether it took effect "+
				"is unknown. Check the state of the resource, then use a new idempotency key.", 0)
	case errors.Is(err, idempotent.ErrResponseUnavailable):
		// The first request completed, but its response could not be kept (too large for the store). Retrying cannot help: the
		// record stays until retention ends, and running the handler again is exactly what must not happen.
		return c.problem(http.StatusConflict, "response-unavailable", "Response unavailable",
			"A request with this idempotency key already completed, but its response was too large to be kept "+
				"and cannot be replayed. Check the state of the resource; use a new idempotency key for a new "+
				"request.", 0)
	case errors.Is(err, idempotent.ErrEffectFailed):
		// The transaction did not commit, but the handler may have done things outside it: say only what is known.
		return c.problem(http.StatusConflict, "effect-failed", "Conflict",
			"The request conflicted with a concurrent change, so its changes were not committed. Retry it with the "+
				"same idempotency key.", time.Second)
	case errors.Is(err, idempotent.ErrPermanent):
		// The store refused in a way no retry can fix (a missing table, denied access, a ValidationException): a
		// 503 with Retry-After would only invite the same failure.
		if beforeRun(err) {
			return c.problem(http.StatusInternalServerError, "store-rejected", "Internal server error",
				"The request was not processed: the service's idempotency store refused it, and retrying will not "+
					"help. The function's log has the cause.", 0)
		}
		return c.problem(http.StatusInternalServerError, "store-rejected", "Internal server error",
			"The request's outcome could not be recorded: the service's idempotency store refused it, and retrying "+
				"will not help. The function's log has the cause.", 0)
	default: // *idempotent.StoreError, and anything the engine may add later: fail closed
		if beforeRun(err) {
			return c.problem(http.StatusServiceUnavailable, "store-unavailable", "Service unavailable",
				"The request could not be processed now and was not run. Retry it with the same idempotency key "+
					"after the number of seconds in the Retry-After header.", storeRetryAfter)
		}
		// The handler ran, and whether its outcome took effect is unknown here: a lost or late answer may have
		// committed. So no claim that nothing changed; the retry with the same key settles it.
		return c.problem(http.StatusServiceUnavailable, "store-unavailable", "Service unavailable",
			"The request's outcome could not be confirmed, so whether it took effect is unknown. Retry it with the "+
				"same idempotency key after the number of seconds in the Retry-After header: the retry returns the "+
				"recorded outcome, or processes the request again.", storeRetryAfter)
	}
}

// beforeRun reports whether err is a store failure from before the handler ran (the claim, or reading or
// decoding a recorded answer), so the request was certainly not processed.
func beforeRun(err error) bool {
	var se *idempotent.StoreError
	if !errors.As(err, &se) {
		return false
	}
	switch se.Op {
	case "claim", "get", "decode":
		return true
	}
	return false
}

// fingerprint fingerprints the request's target and payload: from Body when it was decoded, else from the
// event's body string as it is, which fingerprints alike without a copy.
func (r *Request) fingerprint(cfg *config) string {
	t := r.target(cfg)
	if r.decoded {
		return t.Fingerprint(cfg.payload(r.Body))
	}
	return t.FingerprintString(r.body)
}

// legacySource computes a request's version 1 fingerprint for the engine (idempotent.LegacyFingerprinter).
type legacySource struct {
	r   *Request
	cfg *config
}

// LegacyFingerprint is the request's fingerprint as releases before fingerprint version 2 computed it (method,
// route and payload), to compare with a record they wrote.
func (l *legacySource) LegacyFingerprint() string {
	r, cfg := l.r, l.cfg
	if r.decoded {
		return idempotent.LegacyFingerprint(r.Method, r.Route, cfg.payload(r.Body))
	}
	return idempotent.LegacyFingerprintString(r.Method, r.Route, r.body)
}

// decodeBody returns the body bytes. A body flagged as base64 that does not decode is used as it is, so the
// adapter adds no failure of its own; the handler sees the same event either way.
func decodeBody(body string, isBase64 bool) []byte {
	if isBase64 {
		if b, err := base64.StdEncoding.DecodeString(body); err == nil {
			return b
		}
	}
	return []byte(body)
}
