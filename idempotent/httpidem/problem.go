package httpidem

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
)

// ProblemContentType is the media type of RFC 9457 problem details.
const ProblemContentType = "application/problem+json"

// DefaultProblemTypeBase is the default prefix of the "type" of the problems the front ends write. It points at
// problems.md in the apigw package (where it has always been, so that type URIs stay stable), which documents each
// type under a heading named by its slug.
const DefaultProblemTypeBase = "https://github.com/idemkit/idemkit/blob/main/idempotent/apigw/problems.md#"

// Problem is an RFC 9457 problem details object. Handlers can use it for their own error responses so that a
// client sees one error format from a wrapped route.
type Problem struct {
	// Type is a URI identifying the problem type. Empty means "about:blank" (the status code says it all).
	Type string
	// Title is a short summary of the problem type. Empty means the status code's reason phrase.
	Title string
	// Status is the HTTP status code.
	Status int
	// Detail explains this occurrence to the client. Never put internal error text in it.
	Detail string
	// Instance optionally identifies this occurrence (a URI reference).
	Instance string
	// Extensions are additional members, such as "errors" for field validation failures. Members named like the
	// standard ones above are ignored.
	Extensions map[string]any
}

// MarshalJSON writes the standard members in the order of RFC 9457 (type, title, status, detail, instance), then
// the extensions sorted by name, without HTML escaping.
func (p Problem) MarshalJSON() ([]byte, error) {
	typ := p.Type
	if typ == "" {
		typ = "about:blank"
	}
	title := p.Title
	if title == "" {
		title = http.StatusText(p.Status)
	}
	var buf bytes.Buffer
	buf.WriteByte('{')
	add := func(name string, v any) error {
		if buf.Len() > 1 {
			buf.WriteByte(',')
		}
		if err := encodeJSON(&buf, name); err != nil {
			return err
		}
		buf.WriteByte(':')
		return encodeJSON(&buf, v)
	}
	_ = add("type", typ) // strings and ints always encode
	_ = add("title", title)
	_ = add("status", p.Status)
	if p.Detail != "" {
		_ = add("detail", p.Detail)
	}
	if p.Instance != "" {
		_ = add("instance", p.Instance)
	}
	for _, k := range slices.Sorted(maps.Keys(p.Extensions)) {
		switch k {
		case "type", "title", "status", "detail", "instance":
			continue
		}
		if err := add(k, p.Extensions[k]); err != nil {
			return nil, err
		}
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

func encodeJSON(buf *bytes.Buffer, v any) error {
	var tmp bytes.Buffer
	enc := json.NewEncoder(&tmp)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	buf.Write(bytes.TrimRight(tmp.Bytes(), "\n"))
	return nil
}

// body returns the JSON document. Extensions that cannot be marshalled are dropped rather than failing the
// response: a problem must always be answerable.
func (p Problem) body() string {
	b, err := p.MarshalJSON()
	if err != nil {
		p.Extensions = nil
		b, _ = p.MarshalJSON() // only standard members of basic types are left; cannot fail
	}
	return string(b)
}

// Response returns p as a response: its status, Content-Type application/problem+json and the document. Front ends
// convert it to their own response type.
func (p Problem) Response() Response {
	return Response{
		StatusCode: p.Status,
		Headers:    map[string]string{"Content-Type": ProblemContentType},
		Body:       p.body(),
	}
}

// ServeHTTP writes p as a net/http response, so that a handler behind the middleware answers its own errors in
// the format of the middleware's problems: problem.ServeHTTP(w, r).
func (p Problem) ServeHTTP(w http.ResponseWriter, _ *http.Request) { writeResponse(w, p.Response()) }
