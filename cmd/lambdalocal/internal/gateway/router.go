package gateway

import (
	"fmt"
	"sort"
	"strings"
)

// Route binds a resource path and method to a function.
type Route struct {
	Path     string // resource template: /payments/{id}, /files/{proxy+}; or DefaultRoute (HTTP API only)
	Method   string // upper case, or ANY
	Function string
	// HTTPAPI marks a route of an HTTP API (a SAM HttpApi event); false is a REST API route. Payload is an HTTP
	// API route's payload format version, "2.0" or "1.0"; empty means "2.0". REST routes always use 1.0.
	HTTPAPI bool
	Payload string
}

// DefaultRoute is the path of an HTTP API's $default route: it receives every request no other route matches.
const DefaultRoute = "$default"

// PayloadV2 reports whether the function gets the HTTP API payload format 2.0 (events.APIGatewayV2HTTPRequest).
func (r *Route) PayloadV2() bool { return r.HTTPAPI && r.Payload != "1.0" }

type segKind int

// Lower kinds are more specific.
const (
	literal segKind = iota
	param
	greedy
)

type segment struct {
	kind segKind
	text string // literal text or parameter name
}

type compiled struct {
	Route
	segs []segment
}

// Router matches request paths against the routes of a template.
type Router struct {
	routes []compiled
	// fallback is the $default route, if any; it matches only when no other route does.
	fallback *Route
	// rest counts REST API routes: without any, an unmatched request gets the HTTP API's 404.
	rest int
}

// NewRouter validates and compiles routes.
func NewRouter(routes []Route) (*Router, error) {
	r := &Router{}
	seen := map[string]string{}
	for _, rt := range routes {
		if !rt.HTTPAPI {
			r.rest++
		}
		if rt.Path == DefaultRoute {
			if !rt.HTTPAPI {
				return nil, fmt.Errorf("route %s (%s): $default is a route of HTTP APIs only", rt.Path, rt.Function)
			}
			if r.fallback != nil {
				return nil, fmt.Errorf("route $default is declared by both %s and %s", r.fallback.Function, rt.Function)
			}
			rt.Method = "ANY"
			r.fallback = &rt
			continue
		}
		segs, err := parsePath(rt.Path)
		if err != nil {
			return nil, fmt.Errorf("route %s %s (%s): %w", rt.Method, rt.Path, rt.Function, err)
		}
		rt.Method = strings.ToUpper(rt.Method)
		key := rt.Method + " " + canonical(segs)
		if other, dup := seen[key]; dup {
			return nil, fmt.Errorf("route %s %s is declared by both %s and %s", rt.Method, rt.Path, other, rt.Function)
		}
		seen[key] = rt.Function
		r.routes = append(r.routes, compiled{Route: rt, segs: segs})
	}
	return r, nil
}

// Routes returns the routes in match order, for the start-up listing.
func (r *Router) Routes() []Route {
	c := append([]compiled(nil), r.routes...)
	sort.SliceStable(c, func(i, j int) bool { return moreSpecific(c[i], c[j]) })
	out := make([]Route, len(c), len(c)+1)
	for i := range c {
		out[i] = c[i].Route
	}
	if r.fallback != nil {
		out = append(out, *r.fallback)
	}
	return out
}

// HTTPAPIOnly reports whether every route belongs to an HTTP API, so that a request no route matches gets the
// HTTP API's answer (404) rather than the REST API's (403).
func (r *Router) HTTPAPIOnly() bool { return r.rest == 0 && (len(r.routes) > 0 || r.fallback != nil) }

// Match finds the route for method and path, with the path parameters it binds.
func (r *Router) Match(method, path string) (*Route, map[string]string, bool) {
	parts := splitPath(path)
	var (
		best       *compiled
		bestParams map[string]string
	)
	for i := range r.routes {
		c := &r.routes[i]
		if c.Method != "ANY" && c.Method != method {
			continue
		}
		params, ok := c.match(parts)
		if !ok {
			continue
		}
		if best == nil || moreSpecific(*c, *best) {
			best, bestParams = c, params
		}
	}
	if best == nil {
		if r.fallback != nil {
			rt := *r.fallback
			return &rt, nil, true
		}
		return nil, nil, false
	}
	rt := best.Route
	return &rt, bestParams, true
}

func (c *compiled) match(parts []string) (map[string]string, bool) {
	var params map[string]string
	set := func(k, v string) {
		if params == nil {
			params = map[string]string{}
		}
		params[k] = v
	}
	for i, s := range c.segs {
		switch s.kind {
		case greedy:
			// {proxy+} needs at least one segment: /{proxy+} does not match /.
			if i >= len(parts) {
				return nil, false
			}
			set(s.text, strings.Join(parts[i:], "/"))
			return params, true
		case param:
			if i >= len(parts) {
				return nil, false
			}
			set(s.text, parts[i])
		case literal:
			if i >= len(parts) || parts[i] != s.text {
				return nil, false
			}
		}
	}
	return params, len(parts) == len(c.segs)
}

// moreSpecific orders routes as API Gateway resolves resources: segment by segment,
// literal before {param} before {proxy+}; then longer paths; then an exact method before ANY.
func moreSpecific(a, b compiled) bool {
	for i := 0; i < len(a.segs) && i < len(b.segs); i++ {
		if a.segs[i].kind != b.segs[i].kind {
			return a.segs[i].kind < b.segs[i].kind
		}
	}
	if len(a.segs) != len(b.segs) {
		return len(a.segs) > len(b.segs)
	}
	return a.Method != "ANY" && b.Method == "ANY"
}

func parsePath(p string) ([]segment, error) {
	if !strings.HasPrefix(p, "/") {
		return nil, fmt.Errorf("path must start with /")
	}
	parts := splitPath(p)
	segs := make([]segment, 0, len(parts))
	for i, part := range parts {
		switch {
		case strings.HasPrefix(part, "{") && strings.HasSuffix(part, "+}"):
			if i != len(parts)-1 {
				return nil, fmt.Errorf("greedy %s must be the last segment", part)
			}
			segs = append(segs, segment{kind: greedy, text: part[1 : len(part)-2]})
		case strings.HasPrefix(part, "{") && strings.HasSuffix(part, "}"):
			name := part[1 : len(part)-1]
			if name == "" {
				return nil, fmt.Errorf("empty path parameter name")
			}
			segs = append(segs, segment{kind: param, text: name})
		case strings.ContainsAny(part, "{}"):
			return nil, fmt.Errorf("segment %q: a parameter must be a whole segment", part)
		default:
			segs = append(segs, segment{kind: literal, text: part})
		}
	}
	return segs, nil
}

func canonical(segs []segment) string {
	var b strings.Builder
	for _, s := range segs {
		b.WriteByte('/')
		switch s.kind {
		case literal:
			b.WriteString(s.text)
		case param:
			b.WriteString("{}")
		case greedy:
			b.WriteString("{+}")
		}
	}
	return b.String()
}

// splitPath drops empty segments, so /payments/ and /payments name the same resource.
func splitPath(p string) []string {
	var out []string
	for _, s := range strings.Split(p, "/") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}
