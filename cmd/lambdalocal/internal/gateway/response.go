package gateway

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// ErrMalformedResponse marks a function result that is not a valid proxy response;
// API Gateway logs "Malformed Lambda proxy response" and answers 502.
var ErrMalformedResponse = errors.New("malformed Lambda proxy response")

// ProxyResponse is a validated Lambda proxy response, ready to be written.
type ProxyResponse struct {
	StatusCode int
	Header     http.Header
	Body       []byte
}

// ParseResponse validates a function's result as API Gateway does for payload
// format 1.0: a JSON object with an integer statusCode and only the keys statusCode,
// headers, multiValueHeaders, body and isBase64Encoded; headers map to strings,
// multiValueHeaders to string lists, body is a string. For a header in both maps the
// multiValueHeaders values win.
func ParseResponse(payload []byte) (*ProxyResponse, error) {
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("%w: not a JSON object: %w", ErrMalformedResponse, err)
	}
	if raw == nil { // JSON null
		return nil, fmt.Errorf("%w: not a JSON object", ErrMalformedResponse)
	}
	for k := range raw {
		switch k {
		case "statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded":
		default:
			return nil, fmt.Errorf("%w: unexpected field %q", ErrMalformedResponse, k)
		}
	}
	var resp struct {
		StatusCode        *json.Number         `json:"statusCode"`
		Headers           map[string]*string   `json:"headers"`
		MultiValueHeaders map[string][]*string `json:"multiValueHeaders"`
		Body              *string              `json:"body"`
		IsBase64Encoded   *bool                `json:"isBase64Encoded"`
	}
	d := json.NewDecoder(bytes.NewReader(payload))
	d.UseNumber()
	if err := d.Decode(&resp); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedResponse, err)
	}
	if sc := bytes.TrimSpace(raw["statusCode"]); len(sc) > 0 && sc[0] == '"' {
		return nil, fmt.Errorf("%w: statusCode must be a number, not %s", ErrMalformedResponse, sc)
	}
	if resp.StatusCode == nil {
		return nil, fmt.Errorf("%w: statusCode is missing", ErrMalformedResponse)
	}
	out, err := newProxyResponse(*resp.StatusCode)
	if err != nil {
		return nil, err
	}
	for k, v := range resp.Headers {
		if _, inMulti := resp.MultiValueHeaders[k]; inMulti || v == nil {
			continue
		}
		out.Header.Add(k, *v)
	}
	for k, vs := range resp.MultiValueHeaders {
		for _, v := range vs {
			if v != nil {
				out.Header.Add(k, *v)
			}
		}
	}
	return out.finish(resp.Body, resp.IsBase64Encoded)
}

// newProxyResponse starts a parsed response with its status code, which must be an integer HTTP status.
func newProxyResponse(statusCode json.Number) (*ProxyResponse, error) {
	code, err := statusCode.Int64()
	if err != nil {
		return nil, fmt.Errorf("%w: statusCode %s is not an HTTP status: %w", ErrMalformedResponse, statusCode.String(), err)
	}
	if code < 100 || code > 599 {
		return nil, fmt.Errorf("%w: statusCode %s is not an HTTP status", ErrMalformedResponse, statusCode.String())
	}
	return &ProxyResponse{StatusCode: int(code), Header: http.Header{}}, nil
}

// finish sets the body of a parsed response, decoded from base64 when the function said so, and the headers the
// gateway decides itself: the framing (computed from the body it sends) and a JSON Content-Type when none was set.
func (out *ProxyResponse) finish(body *string, isBase64 *bool) (*ProxyResponse, error) {
	if body != nil {
		out.Body = []byte(*body)
		if isBase64 != nil && *isBase64 {
			var err error
			if out.Body, err = base64.StdEncoding.DecodeString(*body); err != nil {
				return nil, fmt.Errorf("%w: body is not valid base64: %w", ErrMalformedResponse, err)
			}
		}
	}
	out.Header.Del("Content-Length")
	out.Header.Del("Transfer-Encoding")
	if out.Header.Get("Content-Type") == "" {
		out.Header.Set("Content-Type", "application/json")
	}
	return out, nil
}

// Write sends the response.
func (p *ProxyResponse) Write(w http.ResponseWriter) {
	h := w.Header()
	for k, vs := range p.Header {
		h[k] = append(h[k], vs...)
	}
	w.WriteHeader(p.StatusCode)
	_, _ = w.Write(p.Body)
}
