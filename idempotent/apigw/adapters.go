package apigw

import (
	"context"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/idemkit/idemkit/idempotent"
)

// REST makes an API Gateway REST API (Lambda proxy integration, payload format 1.0) handler idempotent. Keys are
// scoped to the caller, the HTTP method and the resource template ("/payments/{id}"). See the package
// documentation for the responses it adds.
func REST(e *idempotent.Engine,
	h func(context.Context, events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error),
	opts ...Option) func(context.Context, events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
	cfg := newConfig(opts)
	return func(ctx context.Context, ev events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
		r := &Request{
			Method:    strings.ToUpper(firstNonEmpty(ev.HTTPMethod, ev.RequestContext.HTTPMethod)),
			Route:     firstNonEmpty(ev.Resource, ev.RequestContext.ResourcePath, ev.Path),
			Path:      ev.Path,
			body:      ev.Body,
			Principal: restPrincipal(ev.RequestContext),
			single:    ev.Headers,
			multi:     ev.MultiValueHeaders,
			rest:      true,
		}
		r.decode(cfg, ev.IsBase64Encoded)
		if cfg.needsRequest() {
			r.Header, r.Event = restHeader(ev.Headers, ev.MultiValueHeaders), ev
		}
		resp, err := serve(ctx, e, cfg, r, func(ctx context.Context) (response, error) {
			out, err := h(ctx, ev)
			return fromREST(out), err
		})
		return resp.rest(), err
	}
}

// HTTP makes an API Gateway HTTP API (payload format 2.0) handler idempotent. Keys are scoped to the caller, the
// HTTP method and the path of the route key ("POST /payments" scopes to "/payments"); on the "$default" route,
// which has no template, to the raw path. See the package documentation for the responses it adds.
func HTTP(e *idempotent.Engine,
	h func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error),
	opts ...Option) func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	cfg := newConfig(opts)
	return func(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		r := &Request{
			Method:    strings.ToUpper(ev.RequestContext.HTTP.Method),
			Route:     v2Route(firstNonEmpty(ev.RouteKey, ev.RequestContext.RouteKey), firstNonEmpty(ev.RawPath, ev.RequestContext.HTTP.Path)),
			Path:      firstNonEmpty(ev.RawPath, ev.RequestContext.HTTP.Path),
			body:      ev.Body,
			Principal: v2Principal(ev.RequestContext.Authorizer),
			single:    ev.Headers,
		}
		r.decode(cfg, ev.IsBase64Encoded)
		if cfg.needsRequest() {
			r.Header, r.Event = joinedHeader(ev.Headers), ev
		}
		resp, err := serve(ctx, e, cfg, r, func(ctx context.Context) (response, error) {
			out, err := h(ctx, ev)
			return fromHTTP(out), err
		})
		return resp.http(), err
	}
}

// FunctionURL makes a Lambda Function URL handler idempotent. Function URLs have no routes, so keys are scoped to
// the caller, the HTTP method and the raw path; use WithRoute to share keys across paths. See the package
// documentation for the responses it adds.
func FunctionURL(e *idempotent.Engine,
	h func(context.Context, events.LambdaFunctionURLRequest) (events.LambdaFunctionURLResponse, error),
	opts ...Option) func(context.Context, events.LambdaFunctionURLRequest) (events.LambdaFunctionURLResponse, error) {
	cfg := newConfig(opts)
	return func(ctx context.Context, ev events.LambdaFunctionURLRequest) (events.LambdaFunctionURLResponse, error) {
		path := firstNonEmpty(ev.RawPath, ev.RequestContext.HTTP.Path)
		principal := ""
		if a := ev.RequestContext.Authorizer; a != nil && a.IAM != nil {
			principal = a.IAM.UserARN
		}
		r := &Request{
			Method:    strings.ToUpper(ev.RequestContext.HTTP.Method),
			Route:     path,
			Path:      path,
			body:      ev.Body,
			Principal: principal,
			single:    ev.Headers,
		}
		r.decode(cfg, ev.IsBase64Encoded)
		if cfg.needsRequest() {
			r.Header, r.Event = joinedHeader(ev.Headers), ev
		}
		resp, err := serve(ctx, e, cfg, r, func(ctx context.Context) (response, error) {
			out, err := h(ctx, ev)
			return fromFunctionURL(out), err
		})
		return resp.functionURL(), err
	}
}

// restPrincipal finds the caller of a REST API request: the Cognito user pool "sub" claim, the Lambda
// authorizer's principalId, or the IAM user ARN, in that order.
func restPrincipal(rc events.APIGatewayProxyRequestContext) string {
	if claims, ok := rc.Authorizer["claims"].(map[string]any); ok {
		if sub, ok := claims["sub"].(string); ok && sub != "" {
			return sub
		}
	}
	if id, ok := rc.Authorizer["principalId"].(string); ok && id != "" {
		return id
	}
	return rc.Identity.UserArn
}

// v2Principal finds the caller of an HTTP API request: the JWT "sub" claim, the Lambda authorizer context's
// principalId, or the IAM user ARN, in that order.
func v2Principal(a *events.APIGatewayV2HTTPRequestContextAuthorizerDescription) string {
	if a == nil {
		return ""
	}
	if a.JWT != nil && a.JWT.Claims["sub"] != "" {
		return a.JWT.Claims["sub"]
	}
	if id, ok := a.Lambda["principalId"].(string); ok && id != "" {
		return id
	}
	if a.IAM != nil {
		return a.IAM.UserARN
	}
	return ""
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
