package httpapi

import (
	"encoding/json"
	"maps"
	"net/http"
	"strconv"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/idemkit/idemkit/idempotent/apigw"
)

// Media types of the responses.
const (
	ContentTypeJSON    = "application/json"
	ContentTypeProblem = "application/problem+json"
)

// TypeBase prefixes the problem type URIs of the service's own problems: the address of problems.md beside this
// file, which describes each type, as idempotent/apigw does for the idempotency layer's problems. Problems that
// add nothing to the HTTP status use "about:blank", as RFC 9457 §4.2.1 recommends.
const TypeBase = "https://github.com/idemkit/idemkit/blob/main/handlers/internal/httpapi/problems.md#"

// FieldError is one invalid member of a request body.
type FieldError struct {
	// Field is the JSON member name, or "" when the problem concerns the body as a whole.
	Field string `json:"field"`
	// Message says what is wrong in a sentence a client developer can act on. It never echoes the value, so a
	// card number or CVV cannot leak through an error.
	Message string `json:"message"`
}

// Problem is an RFC 9457 problem detail plus the response headers that go with it.
type Problem struct {
	// Type is a URI identifying the problem type; "" is sent as "about:blank".
	Type string
	// Title is a short, human-readable summary of the problem type; "" means the HTTP status text.
	Title string
	// Status is the HTTP status code.
	Status int
	// Detail explains this occurrence. It is written for the client and never carries an internal error string.
	Detail string
	// Errors lists invalid fields (validation problems only); nil omits the member.
	Errors []FieldError
	// Extensions are further members (e.g. "decline_code"); they cannot override the standard ones.
	Extensions map[string]any
	// Headers are added to the response (e.g. Allow, Retry-After); Content-Type is always problem+json.
	Headers map[string]string
}

// MarshalJSON writes the problem as idempotent/apigw does for the idempotency layer's own problems (one
// serialisation for every problem the service sends): the standard members first in RFC 9457's order, then the
// extensions, "errors" among them, sorted by name. An extension cannot override a standard member.
func (p Problem) MarshalJSON() ([]byte, error) {
	ext := p.Extensions
	if p.Errors != nil {
		ext = maps.Clone(p.Extensions)
		if ext == nil {
			ext = make(map[string]any, 1)
		}
		ext["errors"] = p.Errors
	}
	return apigw.Problem{Type: p.Type, Title: p.Title, Status: p.Status, Detail: p.Detail, Extensions: ext}.MarshalJSON()
}

// Response renders the problem as an API Gateway proxy response.
func (p Problem) Response() events.APIGatewayProxyResponse {
	body, err := json.Marshal(p)
	if err != nil {
		// Only an unmarshalable extension can get here; fall back to the bare members.
		body, _ = json.Marshal(Problem{Type: p.Type, Title: p.Title, Status: p.Status, Detail: p.Detail})
	}
	headers := make(map[string]string, 1+len(p.Headers))
	maps.Copy(headers, p.Headers)
	headers["Content-Type"] = ContentTypeProblem
	return events.APIGatewayProxyResponse{StatusCode: p.Status, Headers: headers, Body: string(body)}
}

// Validation is the 400 problem for an invalid request body.
func Validation(errs []FieldError) Problem {
	return Problem{
		Type:   TypeBase + "validation-error",
		Title:  "Your request is not valid",
		Status: http.StatusBadRequest,
		Detail: "The request body has invalid fields; see errors.",
		Errors: errs,
	}
}

// BadRequest is a 400 problem about the request as a whole (e.g. malformed JSON).
func BadRequest(detail string) Problem {
	return Problem{Type: TypeBase + "malformed-request", Title: "Malformed request", Status: http.StatusBadRequest, Detail: detail}
}

// NotFound is the 404 problem.
func NotFound(detail string) Problem {
	return Problem{Status: http.StatusNotFound, Detail: detail}
}

// MethodNotAllowed is the 405 problem with the Allow header listing the methods the resource supports.
func MethodNotAllowed(method string, allow []string) Problem {
	return Problem{
		Status:  http.StatusMethodNotAllowed,
		Detail:  "The method " + method + " is not supported by this resource.",
		Headers: map[string]string{"Allow": strings.Join(allow, ", ")},
	}
}

// Unavailable is the 503 problem for a transient failure (throttling, contention); the client should retry after
// retryAfter seconds. 5xx responses are never recorded by the idempotency layer, so the retry runs again.
func Unavailable(retryAfter int) Problem {
	if retryAfter < 1 {
		retryAfter = 1
	}
	return Problem{
		Status:  http.StatusServiceUnavailable,
		Detail:  "The service is temporarily unable to handle the request; retry later.",
		Headers: map[string]string{"Retry-After": strconv.Itoa(retryAfter)},
	}
}

// Internal is the 500 problem. Its detail is deliberately generic: the cause goes to the log, never to the client.
func Internal() Problem {
	return Problem{Status: http.StatusInternalServerError, Detail: "The server could not complete the request."}
}

// JSON renders v as a JSON response with the given status and extra headers.
func JSON(status int, v any, headers map[string]string) events.APIGatewayProxyResponse {
	body, err := json.Marshal(v)
	if err != nil {
		return Internal().Response()
	}
	h := make(map[string]string, 1+len(headers))
	maps.Copy(h, headers)
	h["Content-Type"] = ContentTypeJSON
	return events.APIGatewayProxyResponse{StatusCode: status, Headers: h, Body: string(body)}
}
