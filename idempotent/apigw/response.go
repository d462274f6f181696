package apigw

import (
	"maps"
	"strconv"
	"strings"

	"github.com/aws/aws-lambda-go/events"
)

// response is the union of the three response types, so that one engine path and one codec serve all adapters.
// Conversions keep nil and empty maps and slices apart, so a replay marshals to the same JSON as the original.
type response struct {
	StatusCode        int                 `json:"statusCode"`
	Headers           map[string]string   `json:"headers"`
	MultiValueHeaders map[string][]string `json:"multiValueHeaders"`
	Cookies           []string            `json:"cookies"`
	Body              string              `json:"body"`
	IsBase64Encoded   bool                `json:"isBase64Encoded"`
}

func fromREST(r events.APIGatewayProxyResponse) response {
	return response{StatusCode: r.StatusCode, Headers: r.Headers, MultiValueHeaders: r.MultiValueHeaders,
		Body: r.Body, IsBase64Encoded: r.IsBase64Encoded}
}

func (r response) rest() events.APIGatewayProxyResponse {
	return events.APIGatewayProxyResponse{StatusCode: r.StatusCode, Headers: r.Headers,
		MultiValueHeaders: r.MultiValueHeaders, Body: r.Body, IsBase64Encoded: r.IsBase64Encoded}
}

func fromHTTP(r events.APIGatewayV2HTTPResponse) response {
	return response{StatusCode: r.StatusCode, Headers: r.Headers, MultiValueHeaders: r.MultiValueHeaders,
		Cookies: r.Cookies, Body: r.Body, IsBase64Encoded: r.IsBase64Encoded}
}

func (r response) http() events.APIGatewayV2HTTPResponse {
	return events.APIGatewayV2HTTPResponse{StatusCode: r.StatusCode, Headers: r.Headers,
		MultiValueHeaders: r.MultiValueHeaders, Cookies: r.Cookies, Body: r.Body, IsBase64Encoded: r.IsBase64Encoded}
}

func fromFunctionURL(r events.LambdaFunctionURLResponse) response {
	return response{StatusCode: r.StatusCode, Headers: r.Headers, Cookies: r.Cookies, Body: r.Body,
		IsBase64Encoded: r.IsBase64Encoded}
}

func (r response) functionURL() events.LambdaFunctionURLResponse {
	return events.LambdaFunctionURLResponse{StatusCode: r.StatusCode, Headers: r.Headers, Cookies: r.Cookies,
		Body: r.Body, IsBase64Encoded: r.IsBase64Encoded}
}

// withHeader returns r with header name set to value, replacing any spelling of name in Headers and
// MultiValueHeaders. The maps are copied: handlers often return a shared header map, which must not be written
// to from concurrent requests.
func (r response) withHeader(name, value string) response {
	h := make(map[string]string, len(r.Headers)+1)
	for k, v := range r.Headers {
		if !strings.EqualFold(k, name) {
			h[k] = v
		}
	}
	h[name] = value
	r.Headers = h
	for k := range r.MultiValueHeaders {
		if strings.EqualFold(k, name) {
			r.MultiValueHeaders = maps.Clone(r.MultiValueHeaders)
			maps.DeleteFunc(r.MultiValueHeaders, func(k string, _ []string) bool { return strings.EqualFold(k, name) })
			break
		}
	}
	return r
}

func (r response) replayed(yes bool) response {
	return r.withHeader(ReplayedHeader, strconv.FormatBool(yes))
}
