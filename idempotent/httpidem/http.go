package httpidem

import (
	"encoding/binary"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"

	"github.com/idemkit/idemkit/idempotent"
)

// This file holds the HTTP decisions every front end shares: what a method does with a key, and how the query and
// headers enter the fingerprint.

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

// defaultFunctionName is the name the scope carries unless WithFunctionName sets another: the Lambda function's,
// from the environment the runtime sets, as Powertools' key prefix does.
func defaultFunctionName() string { return os.Getenv("AWS_LAMBDA_FUNCTION_NAME") }

// Query encodings in the fingerprint. The raw query string of HTTP API and Function URL events and of net/http
// requests is kept as received: parameter order and percent-encoding count, since a handler may read it. REST
// events carry only the decoded parameter maps, so their form is the maps': names sorted, each name's values in
// the order received. The tag keeps the encodings apart.
const (
	queryRaw  = "raw:"
	queryMaps = "maps:"
)

// RawQuery is the query part of the fingerprint of a request with a raw query string (Incoming.Query), falling
// back to its decoded parameters when the raw string is missing.
func RawQuery(raw string, params map[string]string) string {
	switch {
	case raw != "":
		return queryRaw + raw
	case len(params) > 0:
		return MapsQuery(nil, params)
	}
	return ""
}

// MapsQuery is the query part of the fingerprint (Incoming.Query) of a request that carries only decoded
// parameters, as a REST event does: its multi-valued and its single-valued parameters, each length-prefixed, names
// sorted. Both maps are covered because a handler may read either, and an inconsistent event could make them
// differ.
func MapsQuery(multi map[string][]string, single map[string]string) string {
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
// order, its canonical form and every value the request has for it.
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
		Header: headerPart(cfg.fpHeaders, r.headers.Values),
	}
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
