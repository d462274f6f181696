package apigw

import (
	"context"

	"github.com/aws/aws-lambda-go/events"

	"github.com/idemkit/idemkit/idempotent/httpidem"
)

// The options, the Request and the problem format are httpidem's, shared with its net/http middleware; these
// names keep apigw's API as it was. httpidem documents each option (default and zero value).

// DefaultKeyHeader is the header the key is read from unless another source is configured.
const DefaultKeyHeader = httpidem.DefaultKeyHeader

// ReplayedHeader is set on every response of a wrapped route: "true" on a replay of a recorded response, "false"
// otherwise (first execution, problem responses, pass-through).
const ReplayedHeader = httpidem.ReplayedHeader

// ProblemContentType is the media type of RFC 9457 problem details.
const ProblemContentType = httpidem.ProblemContentType

// DefaultProblemTypeBase is the default prefix of the "type" of the problems the adapters write. It points at
// problems.md in this package, which documents each type under a heading named by its slug.
const DefaultProblemTypeBase = httpidem.DefaultProblemTypeBase

// Request is the adapter's view of an HTTP event, the same for the three event types (httpidem.Request). Key and
// principal functions receive it; treat it as read-only.
type Request = httpidem.Request

// Option configures an adapter (httpidem.Option).
type Option = httpidem.Option

// WithKeyHeader is httpidem.WithKeyHeader: the key comes from the named header.
func WithKeyHeader(name string) Option { return httpidem.WithKeyHeader(name) }

// WithKeyField is httpidem.WithKeyField: the key comes from a field of the JSON body.
func WithKeyField(path string) Option { return httpidem.WithKeyField(path) }

// WithKeyFunc is httpidem.WithKeyFunc: the key is computed from the request.
func WithKeyFunc(fn func(ctx context.Context, r *Request) (string, error)) Option {
	return httpidem.WithKeyFunc(fn)
}

// WithKeyOptional is httpidem.WithKeyOptional: requests without a key run straight through.
func WithKeyOptional() Option { return httpidem.WithKeyOptional() }

// WithKeyRequiredForPutAndDelete is httpidem.WithKeyRequiredForPutAndDelete.
func WithKeyRequiredForPutAndDelete() Option { return httpidem.WithKeyRequiredForPutAndDelete() }

// WithFunctionName is httpidem.WithFunctionName: the function name in the scope.
func WithFunctionName(name string) Option { return httpidem.WithFunctionName(name) }

// WithLegacyScope is httpidem.WithLegacyScope: record IDs as releases before namespaced principals derived them.
func WithLegacyScope() Option { return httpidem.WithLegacyScope() }

// WithFingerprintHeaders is httpidem.WithFingerprintHeaders: named headers enter the fingerprint.
func WithFingerprintHeaders(names ...string) Option { return httpidem.WithFingerprintHeaders(names...) }

// WithRecordStatus is httpidem.WithRecordStatus: which statuses are recorded.
func WithRecordStatus(fn func(status int) bool) Option { return httpidem.WithRecordStatus(fn) }

// WithPayloadFields is httpidem.WithPayloadFields: only the named JSON fields enter the fingerprint.
func WithPayloadFields(paths ...string) Option { return httpidem.WithPayloadFields(paths...) }

// WithPrincipal is httpidem.WithPrincipal: the caller the key is scoped to.
func WithPrincipal(fn func(ctx context.Context, r *Request) string) Option {
	return httpidem.WithPrincipal(fn)
}

// WithRoute is httpidem.WithRoute: a fixed route in the scope.
func WithRoute(route string) Option { return httpidem.WithRoute(route) }

// WithMergedClaim is httpidem.WithMergedClaim: the claim is merged into the completion.
func WithMergedClaim() Option { return httpidem.WithMergedClaim() }

// WithProblemTypeBase is httpidem.WithProblemTypeBase: the prefix of the problems' type URIs.
func WithProblemTypeBase(base string) Option { return httpidem.WithProblemTypeBase(base) }

// DefaultRecordStatus is the default record policy (httpidem.DefaultRecordStatus): 2xx, 3xx and 4xx responses are
// recorded, except 400, 408, 422, 425 and 429; 1xx, 5xx and anything outside 100-599 are not.
func DefaultRecordStatus(status int) bool { return httpidem.DefaultRecordStatus(status) }

// Problem is an RFC 9457 problem details object (httpidem.Problem, with conversions to the event types'
// responses). Handlers can use it for their own error responses so that a client sees one error format from a
// wrapped route.
type Problem httpidem.Problem

// MarshalJSON writes the standard members in the order of RFC 9457 (type, title, status, detail, instance), then
// the extensions sorted by name, without HTML escaping.
func (p Problem) MarshalJSON() ([]byte, error) { return httpidem.Problem(p).MarshalJSON() }

// RESTResponse returns p as an API Gateway REST API (payload 1.0) response.
func (p Problem) RESTResponse() events.APIGatewayProxyResponse {
	return toREST(httpidem.Problem(p).Response())
}

// HTTPResponse returns p as an API Gateway HTTP API (payload 2.0) response.
func (p Problem) HTTPResponse() events.APIGatewayV2HTTPResponse {
	return toHTTP(httpidem.Problem(p).Response())
}

// FunctionURLResponse returns p as a Lambda Function URL response.
func (p Problem) FunctionURLResponse() events.LambdaFunctionURLResponse {
	return toFunctionURL(httpidem.Problem(p).Response())
}
