package gateway

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
)

// Fixed identifiers of the local API, shaped like the real ones.
const (
	AccountID = "123456789012"
	APIID     = "local00api"
	Stage     = "Prod"
)

// RequestInfo is what NewEvent needs beyond the HTTP request itself.
type RequestInfo struct {
	Route            *Route
	PathParameters   map[string]string
	RequestID        string
	Stage            string // empty means Stage
	Time             time.Time
	BinaryMediaTypes []string
}

// NewEvent builds the proxy integration event (payload format 1.0) for r and its body.
func NewEvent(r *http.Request, body []byte, info RequestInfo) events.APIGatewayProxyRequest {
	stage := info.Stage
	if stage == "" {
		stage = Stage
	}
	headers, multiHeaders := requestHeaders(r)
	ev := events.APIGatewayProxyRequest{
		Resource:          info.Route.Path,
		Path:              r.URL.Path,
		HTTPMethod:        r.Method,
		Headers:           headers,
		MultiValueHeaders: multiHeaders,
		PathParameters:    info.PathParameters,
		RequestContext: events.APIGatewayProxyRequestContext{
			AccountID:         AccountID,
			ResourceID:        resourceID(info.Route.Path),
			Stage:             stage,
			DomainName:        r.Host,
			DomainPrefix:      strings.Split(r.Host, ".")[0],
			RequestID:         info.RequestID,
			ExtendedRequestID: info.RequestID,
			Protocol:          r.Proto,
			Identity: events.APIGatewayRequestIdentity{
				SourceIP:  sourceIP(r),
				UserAgent: r.UserAgent(),
			},
			ResourcePath:     info.Route.Path,
			Path:             "/" + stage + r.URL.Path,
			HTTPMethod:       r.Method,
			RequestTime:      info.Time.UTC().Format("02/Jan/2006:15:04:05 -0700"),
			RequestTimeEpoch: info.Time.UnixMilli(),
			APIID:            APIID,
		},
	}
	if q, err := url.ParseQuery(r.URL.RawQuery); err == nil && len(q) > 0 {
		ev.QueryStringParameters = make(map[string]string, len(q))
		ev.MultiValueQueryStringParameters = make(map[string][]string, len(q))
		for k, vs := range q {
			// The single-value map holds the last value, as API Gateway does.
			ev.QueryStringParameters[k] = vs[len(vs)-1]
			ev.MultiValueQueryStringParameters[k] = vs
		}
	}
	if len(body) > 0 {
		if isBinary(r.Header.Get("Content-Type"), body, info.BinaryMediaTypes) {
			ev.Body = base64.StdEncoding.EncodeToString(body)
			ev.IsBase64Encoded = true
		} else {
			ev.Body = string(body)
		}
	}
	return ev
}

func requestHeaders(r *http.Request) (map[string]string, map[string][]string) {
	single := map[string]string{}
	multi := map[string][]string{}
	add := func(k string, vs ...string) {
		multi[k] = append(multi[k], vs...)
		single[k] = multi[k][len(multi[k])-1]
	}
	// Go's server takes Host out of the header map; API Gateway passes it on.
	if r.Host != "" {
		add("Host", r.Host)
	}
	for k, vs := range r.Header {
		if len(vs) > 0 {
			add(k, vs...)
		}
	}
	// API Gateway adds the forwarding headers of the edge it runs behind.
	ip := sourceIP(r)
	if prev := single["X-Forwarded-For"]; prev != "" {
		single["X-Forwarded-For"] = prev + ", " + ip
		multi["X-Forwarded-For"] = []string{single["X-Forwarded-For"]}
	} else {
		add("X-Forwarded-For", ip)
	}
	if _, port, err := net.SplitHostPort(localAddr(r)); err == nil {
		add("X-Forwarded-Port", port)
	}
	add("X-Forwarded-Proto", "http")
	return single, multi
}

func localAddr(r *http.Request) string {
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		return a.String()
	}
	return ""
}

func sourceIP(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// resourceID stands in for API Gateway's resource id: stable per route template.
func resourceID(path string) string {
	sum := sha256.Sum256([]byte(path))
	return hex.EncodeToString(sum[:3])
}

func isBinary(contentType string, body []byte, binaryTypes []string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err == nil {
		for _, b := range binaryTypes {
			if b == "*/*" || strings.EqualFold(b, mt) ||
				(strings.HasSuffix(b, "/*") && strings.HasPrefix(mt, strings.TrimSuffix(b, "*"))) {
				return true
			}
		}
	}
	return !utf8.Valid(body)
}
