package apigw

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
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

// serve runs one request through the engine and turns every outcome into a response, or returns the handler's
// own error unchanged.
func serve(ctx context.Context, e *idempotent.Engine, cfg *config, r *Request,
	call func(context.Context) (response, error)) (response, error) {
	policy := policyFor(r.Method, cfg.keyOptional, cfg.requireIdempotent)
	if e.Disabled() || policy == passThrough {
		// Safe methods have no side effects to protect, and replaying a read would serve stale data (policyFor).
		resp, err := call(ctx)
		if err != nil {
			return resp, err
		}
		return resp.replayed(false), nil
	}
	if cfg.route != "" {
		r.Route = cfg.route
	}
	function := cfg.function
	if cfg.legacyScope {
		function, r.Principal = "", legacyPrincipal(r.Principal)
	}
	if cfg.principal != nil {
		r.Principal = cfg.principal(ctx, r)
	}
	if r.Principal == "" {
		r.Principal = anonymous
	}

	spec := idempotent.Spec[response]{
		Codec:      responseCodec{},
		Record:     func(resp response) bool { return cfg.record(resp.StatusCode) },
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
	res, err := idempotent.Run(ctx, e, req, spec, func(ctx context.Context) (response, error) {
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
		first, n := r.headerValue(c.header)
		switch {
		case n == 0:
			return "", ""
		case n > 1:
			return "", "several values"
		}
		k := strings.Trim(first, " \t")
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

func (p *problemResponse) response() response {
	r := p.Problem.response()
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

// decode fills Body when something reads it as bytes, or when it is base64 and must be decoded to be
// fingerprinted.
func (r *Request) decode(cfg *config, isBase64 bool) {
	if isBase64 || cfg.needsBody() {
		r.Body, r.decoded = decodeBody(r.body, isBase64), true
	}
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

// restHeader merges the headers and multiValueHeaders of a REST event. API Gateway puts every value of a
// header in multiValueHeaders and the last one in headers, under the client's spelling of the name, so several
// spellings of one name can appear. Values in headers that multiValueHeaders lacks are added, so that
// inconsistent events show several values rather than hide one.
func restHeader(single map[string]string, multi map[string][]string) http.Header {
	h := make(http.Header, len(single))
	for _, k := range sortedKeys(multi) {
		ck := http.CanonicalHeaderKey(k)
		h[ck] = append(h[ck], multi[k]...)
	}
	for _, k := range sortedKeys(single) {
		ck := http.CanonicalHeaderKey(k)
		if !slices.Contains(h[ck], single[k]) {
			h[ck] = append(h[ck], single[k])
		}
	}
	return h
}

// headerValue returns the first value of header name and the number of its values: what r.Header.Values(name)
// holds, read from the event's maps when Header was not built.
func (r *Request) headerValue(name string) (first string, n int) {
	if r.Header != nil {
		vals := r.Header.Values(name)
		if len(vals) == 0 {
			return "", 0
		}
		return vals[0], len(vals)
	}
	target := http.CanonicalHeaderKey(name)
	var spellings, values [4]string
	vals := values[:0]
	if r.rest {
		// As restHeader: every value of multiValueHeaders, then those of headers it lacks, spellings in order.
		for _, k := range spellingsOf(r.multi, target, spellings[:0]) {
			vals = append(vals, r.multi[k]...)
		}
		for _, k := range spellingsOf(r.single, target, spellings[:0]) {
			if v := r.single[k]; !slices.Contains(vals, v) {
				vals = append(vals, v)
			}
		}
	} else {
		for _, k := range spellingsOf(r.single, target, spellings[:0]) {
			vals = append(vals, r.single[k])
		}
	}
	if len(vals) == 0 {
		return "", 0
	}
	return vals[0], len(vals)
}

// headerValues returns every value of header name, as r.Header.Values(name) would, read from the event's maps
// when Header was not built.
func (r *Request) headerValues(name string) []string {
	if r.Header != nil {
		return r.Header.Values(name)
	}
	target := http.CanonicalHeaderKey(name)
	var vals []string
	if r.rest {
		for _, k := range spellingsOf(r.multi, target, nil) {
			vals = append(vals, r.multi[k]...)
		}
		for _, k := range spellingsOf(r.single, target, nil) {
			if v := r.single[k]; !slices.Contains(vals, v) {
				vals = append(vals, v)
			}
		}
		return vals
	}
	for _, k := range spellingsOf(r.single, target, nil) {
		vals = append(vals, r.single[k])
	}
	return vals
}

// spellingsOf appends to dst the names in m whose canonical form is target, in order.
func spellingsOf[V any](m map[string]V, target string, dst []string) []string {
	for k := range m {
		// Canonicalisation changes only ASCII case, so the cheap test rules out almost every name.
		if len(k) == len(target) && strings.EqualFold(k, target) && http.CanonicalHeaderKey(k) == target {
			dst = append(dst, k)
		}
	}
	slices.Sort(dst)
	return dst
}

// joinedHeader builds the header of an HTTP API or Function URL event, whose names are lower case and whose
// repeated headers are already joined with commas.
func joinedHeader(single map[string]string) http.Header {
	h := make(http.Header, len(single))
	for _, k := range sortedKeys(single) {
		ck := http.CanonicalHeaderKey(k)
		h[ck] = append(h[ck], single[k])
	}
	return h
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
