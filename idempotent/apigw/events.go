package apigw

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/idemkit/idemkit/idempotent/httpidem"
)

// This file holds what is API Gateway's own: its header maps, its response types and its authorizers. Everything
// else (keys, policies, scope, fingerprint, problems, the recorded form) is httpidem's core.

// eventHeaders reads header values from an event's maps (httpidem.Headers), building an http.Header only when user
// code asks for one. REST events (rest) have headers and multiValueHeaders; HTTP API and Function URL events
// have lower-case headers whose repeated values are already joined with commas.
type eventHeaders struct {
	single map[string]string
	multi  map[string][]string
	rest   bool
}

// Values returns every value of header name, as Header().Values(name) would, without building the header.
func (h *eventHeaders) Values(name string) []string {
	target := http.CanonicalHeaderKey(name)
	var spellings [4]string
	var vals []string
	if h.rest {
		// As restHeader: every value of multiValueHeaders, then those of headers it lacks, spellings in order.
		for _, k := range spellingsOf(h.multi, target, spellings[:0]) {
			vals = append(vals, h.multi[k]...)
		}
	}
	for _, k := range spellingsOf(h.single, target, spellings[:0]) {
		if v := h.single[k]; !h.rest || !slices.Contains(vals, v) {
			vals = append(vals, v)
		}
	}
	return vals
}

// Header builds the event's http.Header.
func (h *eventHeaders) Header() http.Header {
	if h.rest {
		return restHeader(h.single, h.multi)
	}
	return joinedHeader(h.single)
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

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// The conversions between the event types' responses and the recorded form keep nil and empty maps and slices
// apart, so that a replay marshals to the same JSON as the original.

func fromREST(r events.APIGatewayProxyResponse) httpidem.Response {
	return httpidem.Response{StatusCode: r.StatusCode, Headers: r.Headers, MultiValueHeaders: r.MultiValueHeaders,
		Body: r.Body, IsBase64Encoded: r.IsBase64Encoded}
}

func toREST(r httpidem.Response) events.APIGatewayProxyResponse {
	return events.APIGatewayProxyResponse{StatusCode: r.StatusCode, Headers: r.Headers,
		MultiValueHeaders: r.MultiValueHeaders, Body: r.Body, IsBase64Encoded: r.IsBase64Encoded}
}

func fromHTTP(r events.APIGatewayV2HTTPResponse) httpidem.Response {
	return httpidem.Response{StatusCode: r.StatusCode, Headers: r.Headers, MultiValueHeaders: r.MultiValueHeaders,
		Cookies: r.Cookies, Body: r.Body, IsBase64Encoded: r.IsBase64Encoded}
}

func toHTTP(r httpidem.Response) events.APIGatewayV2HTTPResponse {
	return events.APIGatewayV2HTTPResponse{StatusCode: r.StatusCode, Headers: r.Headers,
		MultiValueHeaders: r.MultiValueHeaders, Cookies: r.Cookies, Body: r.Body, IsBase64Encoded: r.IsBase64Encoded}
}

func fromFunctionURL(r events.LambdaFunctionURLResponse) httpidem.Response {
	return httpidem.Response{StatusCode: r.StatusCode, Headers: r.Headers, Cookies: r.Cookies, Body: r.Body,
		IsBase64Encoded: r.IsBase64Encoded}
}

func toFunctionURL(r httpidem.Response) events.LambdaFunctionURLResponse {
	return events.LambdaFunctionURLResponse{StatusCode: r.StatusCode, Headers: r.Headers, Cookies: r.Cookies,
		Body: r.Body, IsBase64Encoded: r.IsBase64Encoded}
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
