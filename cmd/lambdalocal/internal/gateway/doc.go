// Package gateway is a local stand-in for API Gateway REST APIs with Lambda proxy
// integrations (payload format 1.0): it matches a request to a route declared in the
// SAM template, turns it into an events.APIGatewayProxyRequest, invokes the function
// and maps the function's proxy response back to HTTP.
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
package gateway
