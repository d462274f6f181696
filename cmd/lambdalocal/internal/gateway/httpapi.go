package gateway

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/idemkit/idemkit/cmd/lambdalocal/internal/runtimeapi"
)

// HTTPStage is the stage of SAM's implicit HTTP API: $default, which adds no prefix to the path.
const HTTPStage = "$default"

// NewHTTPEvent builds the HTTP API event of payload format 2.0 for r and its body, as API Gateway documents it:
// header names in lower case, repeated headers and query parameters joined with commas, the Cookie header moved
// into cookies (one element per cookie), rawPath and rawQueryString as the client sent them, and routeKey
// "METHOD /path" or "$default".
func NewHTTPEvent(r *http.Request, body []byte, info RequestInfo) events.APIGatewayV2HTTPRequest {
	routeKey := info.Route.Method + " " + info.Route.Path
	if info.Route.Path == DefaultRoute {
		routeKey = DefaultRoute
	}
	headers, cookies := httpHeaders(r)
	ev := events.APIGatewayV2HTTPRequest{
		Version:        "2.0",
		RouteKey:       routeKey,
		RawPath:        r.URL.EscapedPath(),
		RawQueryString: r.URL.RawQuery,
		Cookies:        cookies,
		Headers:        headers,
		PathParameters: info.PathParameters,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey:     routeKey,
			AccountID:    AccountID,
			Stage:        HTTPStage,
			RequestID:    info.RequestID,
			APIID:        APIID,
			DomainName:   r.Host,
			DomainPrefix: strings.Split(r.Host, ".")[0],
			Time:         info.Time.UTC().Format("02/Jan/2006:15:04:05 -0700"),
			TimeEpoch:    info.Time.UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method:    r.Method,
				Path:      r.URL.Path,
				Protocol:  r.Proto,
				SourceIP:  sourceIP(r),
				UserAgent: r.UserAgent(),
			},
		},
	}
	if q, err := url.ParseQuery(r.URL.RawQuery); err == nil && len(q) > 0 {
		ev.QueryStringParameters = make(map[string]string, len(q))
		for k, vs := range q {
			ev.QueryStringParameters[k] = strings.Join(vs, ",")
		}
	}
	if len(body) > 0 {
		if httpAPIBinary(r.Header.Get("Content-Type"), body) {
			ev.Body = base64.StdEncoding.EncodeToString(body)
			ev.IsBase64Encoded = true
		} else {
			ev.Body = string(body)
		}
	}
	return ev
}

func httpHeaders(r *http.Request) (map[string]string, []string) {
	headers := map[string]string{}
	add := func(k, v string) {
		k = strings.ToLower(k)
		if prev, ok := headers[k]; ok {
			headers[k] = prev + "," + v
			return
		}
		headers[k] = v
	}
	if r.Host != "" {
		add("host", r.Host)
	}
	var cookies []string
	for k, vs := range r.Header {
		for _, v := range vs {
			if strings.EqualFold(k, "Cookie") {
				for _, c := range strings.Split(v, ";") {
					if c = strings.TrimSpace(c); c != "" {
						cookies = append(cookies, c)
					}
				}
				continue
			}
			add(k, v)
		}
	}
	ip := sourceIP(r)
	if prev, ok := headers["x-forwarded-for"]; ok {
		headers["x-forwarded-for"] = prev + ", " + ip
	} else {
		headers["x-forwarded-for"] = ip
	}
	if _, port, err := net.SplitHostPort(localAddr(r)); err == nil {
		headers["x-forwarded-port"] = port
	}
	headers["x-forwarded-proto"] = "http"
	return headers, cookies
}

// httpAPIBinary decides isBase64Encoded for an HTTP API, which has no BinaryMediaTypes: a body reaches the
// function as text when its media type is textual (text/*, JSON, XML, JavaScript, and their +json/+xml
// relatives) or when there is no Content-Type and the body is UTF-8; anything else is base64, form posts
// included, as API Gateway delivers them.
func httpAPIBinary(contentType string, body []byte) bool {
	if contentType == "" {
		return !utf8.Valid(body)
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return true
	}
	switch {
	case strings.HasPrefix(mt, "text/"),
		mt == "application/json", mt == "application/xml", mt == "application/javascript",
		strings.HasSuffix(mt, "+json"), strings.HasSuffix(mt, "+xml"):
		return !utf8.Valid(body)
	}
	return true
}

// ParseHTTPResponse reads a function's result as an HTTP API does for payload format 2.0. A JSON object with a
// statusCode is a structured response: statusCode (an integer 100-599), headers (string values), cookies (one
// Set-Cookie header each), body and isBase64Encoded; other fields, multiValueHeaders included, are not part of
// format 2.0 and are ignored. Any other valid JSON, an object without statusCode or a string, number or array,
// is the body of a 200 with Content-Type application/json, as API Gateway assumes. Only text that is not JSON is
// malformed.
func ParseHTTPResponse(payload []byte) (*ProxyResponse, error) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: not JSON: %w", ErrMalformedResponse, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: more than one JSON value", ErrMalformedResponse)
	}
	if obj, ok := v.(map[string]any); !ok || obj["statusCode"] == nil {
		h := http.Header{}
		h.Set("Content-Type", "application/json")
		return &ProxyResponse{StatusCode: http.StatusOK, Header: h, Body: bytes.TrimSpace(payload)}, nil
	}
	var resp struct {
		StatusCode      json.Number        `json:"statusCode"`
		Headers         map[string]*string `json:"headers"`
		Cookies         []*string          `json:"cookies"`
		Body            *string            `json:"body"`
		IsBase64Encoded *bool              `json:"isBase64Encoded"`
	}
	d := json.NewDecoder(bytes.NewReader(payload))
	d.UseNumber()
	if err := d.Decode(&resp); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedResponse, err)
	}
	out, err := newProxyResponse(resp.StatusCode)
	if err != nil {
		return nil, err
	}
	for k, v := range resp.Headers {
		if v != nil {
			out.Header.Add(k, *v)
		}
	}
	for _, c := range resp.Cookies {
		if c != nil {
			out.Header.Add("Set-Cookie", *c)
		}
	}
	return out.finish(resp.Body, resp.IsBase64Encoded)
}

// serveHTTPAPI invokes fn for a route of an HTTP API and answers as an HTTP API does: the payload format the
// route declares, and the HTTP API's own errors (500 for a function error or a malformed response, 503 when the
// integration times out, 413 for an event over Lambda's limit).
func (g *Gateway) serveHTTPAPI(w http.ResponseWriter, r *http.Request, body []byte, fn Invoker, info RequestInfo) int {
	w.Header().Set("Apigw-Requestid", info.RequestID)
	var ev any
	if info.Route.PayloadV2() {
		ev = NewHTTPEvent(r, body, info)
	} else {
		// Format 1.0 on an HTTP API is the REST event's shape; an HTTP API has no BinaryMediaTypes.
		v1 := NewEvent(r, body, RequestInfo{Route: info.Route, PathParameters: info.PathParameters,
			RequestID: info.RequestID, Stage: HTTPStage, Time: info.Time})
		v1.RequestContext.Path = r.URL.Path
		if httpAPIBinary(r.Header.Get("Content-Type"), body) && len(body) > 0 {
			v1.Body, v1.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
		}
		ev = v1
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		return httpAPIError(w, http.StatusInternalServerError, "Internal Server Error")
	}
	if len(payload) > runtimeapi.MaxPayload {
		return httpAPIError(w, http.StatusRequestEntityTooLarge, "Request Entity Too Large")
	}
	timeout := g.IntegrationTimeout
	if timeout <= 0 {
		timeout = DefaultIntegrationTimeout
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	res, err := fn.Invoke(ctx, payload, runtimeapi.InvokeOptions{RequestID: info.RequestID})
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return httpAPIError(w, http.StatusServiceUnavailable, "Service Unavailable")
	case r.Context().Err() != nil:
		return 499
	case err != nil:
		g.logf("%s invoke %s: %v", info.RequestID, info.Route.Function, err)
		return httpAPIError(w, http.StatusInternalServerError, "Internal Server Error")
	case res.Failed():
		g.logf("%s %s failed: %s", info.RequestID, info.Route.Function, truncate(res.Payload, 512))
		return httpAPIError(w, http.StatusInternalServerError, "Internal Server Error")
	}
	parse := ParseResponse
	if info.Route.PayloadV2() {
		parse = ParseHTTPResponse
	}
	resp, err := parse(res.Payload)
	if err != nil {
		g.logf("%s %s: %v", info.RequestID, info.Route.Function, err)
		return httpAPIError(w, http.StatusInternalServerError, "Internal Server Error")
	}
	resp.Write(w)
	return resp.StatusCode
}

// httpAPIError writes one of an HTTP API's own JSON answers.
func httpAPIError(w http.ResponseWriter, code int, msg string) int {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	b, _ := json.Marshal(map[string]string{"message": msg})
	_, _ = w.Write(b)
	return code
}
