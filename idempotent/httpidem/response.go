package httpidem

import (
	"maps"
	"strconv"
	"strings"
)

// Response is a response in the form the core records and replays: the union of API Gateway's REST, HTTP API and
// Function URL response types, whose JSON form the Lambda runtime sends to API Gateway. The net/http middleware
// records a handler's response in the same form (its headers in MultiValueHeaders, a body that is not UTF-8 in
// base64), so one codec serves every front end. Front ends convert their response types to and from it; the
// conversions keep nil and empty maps and slices apart, so that a replay marshals exactly as the original did.
type Response struct {
	StatusCode        int                 `json:"statusCode"`
	Headers           map[string]string   `json:"headers"`
	MultiValueHeaders map[string][]string `json:"multiValueHeaders"`
	Cookies           []string            `json:"cookies"`
	Body              string              `json:"body"`
	IsBase64Encoded   bool                `json:"isBase64Encoded"`

	// noRecord keeps the response out of the record whatever its status (a streamed or hijacked net/http
	// response, whose bytes the client already has).
	noRecord bool
}

// withHeader returns r with header name set to value, replacing any spelling of name in Headers and
// MultiValueHeaders. The maps are copied: handlers often return a shared header map, which must not be written
// to from concurrent requests.
func (r Response) withHeader(name, value string) Response {
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

func (r Response) replayed(yes bool) Response {
	return r.withHeader(ReplayedHeader, strconv.FormatBool(yes))
}
