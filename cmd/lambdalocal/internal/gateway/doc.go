// Package gateway is a local stand-in for API Gateway REST APIs with Lambda proxy
// integrations (payload format 1.0) and for HTTP APIs (payload format 2.0, or 1.0 when
// the route says so): it matches a request to a route declared in the SAM template,
// turns it into an events.APIGatewayProxyRequest or events.APIGatewayV2HTTPRequest,
// invokes the function and maps the function's response back to HTTP.
//
// Behaviour follows API Gateway's documented defaults:
//
//   - a path or method that no route declares: 403 {"message":"Missing Authentication Token"}
//   - a body over 10 MB: 413 "HTTP content length exceeded 10485760 bytes."; an event over
//     Lambda's 6 MB invocation limit: 413 {"message": "Request Too Long"}
//   - a function error (handled, crash or timeout) or a malformed proxy response:
//     502 {"message": "Internal server error"}
//   - no answer within the integration timeout (29 s): 504 {"message": "Endpoint request timed out"}
//
// Matching: the most specific resource wins segment by segment (a literal segment
// over {param} over {proxy+}); on the same resource an exact method beats ANY.
//
// Local choices, documented where API Gateway has no single answer: the stage is
// "Prod" (SAM's implicit API stage), so requestContext.path is "/Prod/<path>"; a body
// is base64-encoded when its Content-Type is one of the template's BinaryMediaTypes
// or it is not valid UTF-8; a response with isBase64Encoded is always decoded (a
// deployed REST API decodes only when the client's Accept matches BinaryMediaTypes).
//
// HTTP API routes (httpapi.go) follow the HTTP API's rules instead: the $default stage
// (no path prefix), routeKey "METHOD /path" or "$default" for the route that takes
// every request no other route matches, lower-case headers, repeated headers and query
// parameters joined with commas, cookies in their own field and Set-Cookie from the
// response's cookies, a result without statusCode sent as a 200 JSON body; errors are
// 404 {"message":"Not Found"} when only HTTP API routes are served (403 as above when
// REST routes are served too, since both share one local server), 500 {"message":
// "Internal Server Error"} for a function error or a malformed response, and 503
// {"message":"Service Unavailable"} at the integration timeout.
package gateway
