package apigw

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"strings"

	"github.com/idemkit/idemkit/idempotent"
)

// This file holds the HTTP decisions of the adapters, apart from API Gateway's event types: what a method does
// with a key, how a principal is named, and how the query and headers enter the fingerprint.

// methodPolicy is what a wrapped route does with a request, by its method.
type methodPolicy uint8

const (
	// passThrough: run the handler, record nothing, ignore any key (safe methods).
	passThrough methodPolicy = iota
	// keyOptional: with a key the request is recorded; without one it runs straight through.
	keyOptional
	// keyRequired: a request without a key is refused with 400.
	keyRequired
)

// policyFor decides the policy of method m (any case). GET, HEAD, OPTIONS and TRACE are safe (RFC 9110 §9.2.1):
// no side effects to protect, and a replayed read would be stale. PUT and DELETE are idempotent by HTTP semantics
// (§9.2.2), so a client may repeat them without a key; with one, they are recorded like any other. optional makes
// every key optional (WithKeyOptional); requireIdempotent requires keys on PUT and DELETE too
// (WithKeyRequiredForPutAndDelete).
func policyFor(m string, optional, requireIdempotent bool) methodPolicy {
	switch strings.ToUpper(m) {
	case "GET", "HEAD", "OPTIONS", "TRACE":
		return passThrough
	case "PUT", "DELETE":
		if !requireIdempotent {
			return keyOptional
		}
	}
	if optional {
		return keyOptional
	}
	return keyRequired
}

// Principal sources: the namespace of a principal says where it came from, so that no authorizer's value can equal
// another source's or the unauthenticated scope ("anonymous" has no colon; every namespaced principal has one).
const (
	sourceCognito = "cognito:" // REST API Cognito user pool authorizer: the "sub" claim
	sourceJWT     = "jwt:"     // HTTP API JWT authorizer: the "sub" claim
	sourceLambda  = "lambda:"  // Lambda authorizer: its principalId
	sourceIAM     = "iam:"     // IAM authorization: the caller's ARN
	sourceContext = "ctx:"     // an authorizer without any of the above: a hash of its whole context
)

// namespaced returns id under source, or "" when id is empty (the source did not name the caller).
func namespaced(source, id string) string {
	if id == "" {
		return ""
	}
	return source + id
}

// legacyPrincipal is the principal releases before namespacing derived from the same authorizer: the namespaced
// value without its source, and "" (anonymous) for a context hash (see WithLegacyScope).
func legacyPrincipal(p string) string {
	for _, source := range []string{sourceCognito, sourceJWT, sourceLambda, sourceIAM} {
		if id, ok := strings.CutPrefix(p, source); ok {
			return id
		}
	}
	return ""
}

// contextPrincipal names the caller of an authorizer context that holds none of the known principal fields: a
// hex SHA-256 of its JSON form (encoding/json writes map members sorted, so one context has one form). Two callers
// whose authorizers return different contexts get different scopes, where they once shared "anonymous"; the same
// caller gets the same scope as long as the authorizer returns the same context.
func contextPrincipal(authorizer any) string {
	b, err := json.Marshal(authorizer)
	if err != nil {
		// Only values decoded from JSON get here, which marshal; an unmarshalable one still must not fall back to
		// "anonymous".
		b = []byte(err.Error())
	}
	sum := sha256.Sum256(b)
	return sourceContext + hex.EncodeToString(sum[:])
}

// defaultFunctionName is the name the scope carries unless WithFunctionName sets another: the Lambda function's,
// from the environment the runtime sets, as Powertools' key prefix does.
func defaultFunctionName() string { return os.Getenv("AWS_LAMBDA_FUNCTION_NAME") }

// Query encodings in the fingerprint. The raw query string of HTTP API and Function URL events is kept as
// received: parameter order and percent-encoding count, since a handler may read RawQueryString. REST events carry
// only the decoded parameter maps, so their form is the maps': names sorted, each name's values in the order
// received. The tag keeps the encodings apart.
const (
	queryRaw  = "raw:"
	queryMaps = "maps:"
)

// rawQuery is the query part of the fingerprint of an event with a raw query string, falling back to its decoded
// parameters when the raw string is missing.
func rawQuery(raw string, params map[string]string) string {
	switch {
	case raw != "":
		return queryRaw + raw
	case len(params) > 0:
		return mapsQuery(nil, params)
	}
	return ""
}

// mapsQuery is the query part of the fingerprint of a REST event: its multiValueQueryStringParameters and its
// queryStringParameters, each length-prefixed, names sorted. Both maps are covered because a handler may read
// either, and an inconsistent event could make them differ.
func mapsQuery(multi map[string][]string, single map[string]string) string {
	if len(multi) == 0 && len(single) == 0 {
		return ""
	}
	b := []byte(queryMaps)
	b = appendCount(b, len(multi))
	for _, k := range sortedKeys(multi) {
		b = appendValues(appendLenString(b, k), multi[k])
	}
	b = appendCount(b, len(single))
	for _, k := range sortedKeys(single) {
		b = appendLenString(appendLenString(b, k), single[k])
	}
	return string(b)
}

// headerPart is the header part of the fingerprint: for each name given to WithFingerprintHeaders, in that
// order, its canonical form and every value the request has for it (see Request.headerValues).
func headerPart(names []string, values func(name string) []string) string {
	if len(names) == 0 {
		return ""
	}
	var b []byte
	for _, name := range names {
		b = appendValues(appendLenString(b, http.CanonicalHeaderKey(name)), values(name))
	}
	return string(b)
}

func appendCount(b []byte, n int) []byte { return binary.BigEndian.AppendUint64(b, uint64(n)) }

func appendLenString(b []byte, s string) []byte { return append(appendCount(b, len(s)), s...) }

func appendValues(b []byte, vals []string) []byte {
	b = appendCount(b, len(vals))
	for _, v := range vals {
		b = appendLenString(b, v)
	}
	return b
}

// target is what the fingerprint covers beyond the payload: method, route, concrete path, query and the named
// headers.
func (r *Request) target(cfg *config) idempotent.Target {
	return idempotent.Target{
		Method: r.Method,
		Route:  r.Route,
		Path:   r.Path,
		Query:  r.query,
		Header: headerPart(cfg.fpHeaders, r.headerValues),
	}
}
