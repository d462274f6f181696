package apigw

import (
	"context"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/httpidem"
)

// REST makes an API Gateway REST API (Lambda proxy integration, payload format 1.0) handler idempotent. Keys are
// scoped to the caller, the HTTP method and the resource template ("/payments/{id}"). See the package
// documentation for the responses it adds.
func REST(e *idempotent.Engine,
	h func(context.Context, events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error),
	opts ...Option) func(context.Context, events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
	return adapt(e, opts, func(ev events.APIGatewayProxyRequest) httpidem.Incoming {
		in := incoming(firstNonEmpty(ev.HTTPMethod, ev.RequestContext.HTTPMethod),
			firstNonEmpty(ev.Resource, ev.RequestContext.ResourcePath, ev.Path), ev.Path,
			restPrincipal(ev.RequestContext), ev.Body, ev.IsBase64Encoded,
			&eventHeaders{single: ev.Headers, multi: ev.MultiValueHeaders, rest: true})
		in.Query = httpidem.MapsQuery(ev.MultiValueQueryStringParameters, ev.QueryStringParameters)
		return in
	}, h, fromREST, toREST)
}

// HTTP makes an API Gateway HTTP API (payload format 2.0) handler idempotent. Keys are scoped to the caller, the
// HTTP method and the path of the route key ("POST /payments" scopes to "/payments"); on the "$default" route,
// which has no template, to the raw path. See the package documentation for the responses it adds.
func HTTP(e *idempotent.Engine,
	h func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error),
	opts ...Option) func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	return adapt(e, opts, func(ev events.APIGatewayV2HTTPRequest) httpidem.Incoming {
		path := firstNonEmpty(ev.RawPath, ev.RequestContext.HTTP.Path)
		in := incoming(ev.RequestContext.HTTP.Method, v2Route(firstNonEmpty(ev.RouteKey, ev.RequestContext.RouteKey), path),
			path, v2Principal(ev.RequestContext.Authorizer), ev.Body, ev.IsBase64Encoded, &eventHeaders{single: ev.Headers})
		in.Query = httpidem.RawQuery(ev.RawQueryString, ev.QueryStringParameters)
		return in
	}, h, fromHTTP, toHTTP)
}

// FunctionURL makes a Lambda Function URL handler idempotent. Function URLs have no routes, so keys are scoped to
// the caller, the HTTP method and the raw path; use WithRoute to share keys across paths. See the package
// documentation for the responses it adds.
func FunctionURL(e *idempotent.Engine,
	h func(context.Context, events.LambdaFunctionURLRequest) (events.LambdaFunctionURLResponse, error),
	opts ...Option) func(context.Context, events.LambdaFunctionURLRequest) (events.LambdaFunctionURLResponse, error) {
	return adapt(e, opts, func(ev events.LambdaFunctionURLRequest) httpidem.Incoming {
		path := firstNonEmpty(ev.RawPath, ev.RequestContext.HTTP.Path)
		in := incoming(ev.RequestContext.HTTP.Method, path, path, urlPrincipal(ev.RequestContext.Authorizer), ev.Body,
			ev.IsBase64Encoded, &eventHeaders{single: ev.Headers})
		in.Query = httpidem.RawQuery(ev.RawQueryString, ev.QueryStringParameters)
		return in
	}, h, fromFunctionURL, toFunctionURL)
}

// incoming is what every event type carries alike; the adapters add the query, whose form differs.
func incoming(method, route, path, principal, body string, isBase64 bool, h *eventHeaders) httpidem.Incoming {
	return httpidem.Incoming{Method: method, Route: route, Path: path, Principal: principal,
		LegacyPrincipal: legacyPrincipal(principal), Body: body, Base64: isBase64, Headers: h}
}

// adapt is the one body of the three adapters: translate the event (incoming), run it through the core, convert
// the handler's response to the recorded form (from) and the answer back to the event type's (to).
func adapt[Ev, Out any](e *idempotent.Engine, opts []Option, incoming func(Ev) httpidem.Incoming,
	h func(context.Context, Ev) (Out, error), from func(Out) httpidem.Response, to func(httpidem.Response) Out,
) func(context.Context, Ev) (Out, error) {
	core := httpidem.NewCore(e, opts...)
	return func(ctx context.Context, ev Ev) (Out, error) {
		in := incoming(ev)
		if core.NeedsEvent() {
			in.Event = ev
		}
		resp, err := core.Serve(ctx, in, func(ctx context.Context) (httpidem.Response, error) {
			out, err := h(ctx, ev)
			return from(out), err
		})
		return to(resp), err
	}
}

// restPrincipal finds the caller of a REST API request: the Cognito user pool "sub" claim, the Lambda
// authorizer's principalId, or the IAM user ARN, in that order, each namespaced by its source; else, when an
// authorizer context is present, a hash of it; else "".
func restPrincipal(rc events.APIGatewayProxyRequestContext) string {
	if claims, ok := rc.Authorizer["claims"].(map[string]any); ok {
		if sub, ok := claims["sub"].(string); ok && sub != "" {
			return namespaced(sourceCognito, sub)
		}
	}
	if id, ok := rc.Authorizer["principalId"].(string); ok && id != "" {
		return namespaced(sourceLambda, id)
	}
	if p := namespaced(sourceIAM, rc.Identity.UserArn); p != "" {
		return p
	}
	// API Gateway adds integrationLatency to a Lambda authorizer's context; it changes from one request to the
	// next, so it must not name the caller.
	if n := len(rc.Authorizer); n > 1 || (n == 1 && rc.Authorizer["integrationLatency"] == nil) {
		ctx := make(map[string]any, n)
		for k, v := range rc.Authorizer {
			if k != "integrationLatency" {
				ctx[k] = v
			}
		}
		return contextPrincipal(ctx)
	}
	return ""
}

// v2Principal finds the caller of an HTTP API request: the JWT "sub" claim, the Lambda authorizer context's
// principalId, or the IAM user ARN, in that order, each namespaced by its source; else, when an authorizer is
// present (a Lambda authorizer with simple responses has no principalId), a hash of its context; else "".
func v2Principal(a *events.APIGatewayV2HTTPRequestContextAuthorizerDescription) string {
	if a == nil {
		return ""
	}
	if a.JWT != nil && a.JWT.Claims["sub"] != "" {
		return namespaced(sourceJWT, a.JWT.Claims["sub"])
	}
	if id, ok := a.Lambda["principalId"].(string); ok && id != "" {
		return namespaced(sourceLambda, id)
	}
	if a.IAM != nil && a.IAM.UserARN != "" {
		return namespaced(sourceIAM, a.IAM.UserARN)
	}
	if a.JWT != nil || len(a.Lambda) > 0 || a.IAM != nil {
		return contextPrincipal(a)
	}
	return ""
}

// urlPrincipal finds the caller of a Function URL request: the IAM user ARN (AWS_IAM auth), else a hash of the
// authorizer context when there is one, else "".
func urlPrincipal(a *events.LambdaFunctionURLRequestContextAuthorizerDescription) string {
	switch {
	case a == nil || a.IAM == nil:
		return ""
	case a.IAM.UserARN != "":
		return namespaced(sourceIAM, a.IAM.UserARN)
	}
	return contextPrincipal(a)
}

// v2Route is the path part of a route key ("POST /payments/{id}" -> "/payments/{id}"). "$default" and other
// keys without a path fall back to the raw path.
func v2Route(routeKey, rawPath string) string {
	if _, path, ok := strings.Cut(routeKey, " "); ok && path != "" {
		return path
	}
	if rawPath != "" {
		return rawPath
	}
	return routeKey
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
