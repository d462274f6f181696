// Package httpapi holds the HTTP plumbing the example service's functions share: RFC 9457 problem+json
// responses, JSON responses, a router over API Gateway REST (v1) proxy events, and a strict JSON body reader
// that reports every invalid field at once.
//
// A handler built from these never returns a Go error to the Lambda runtime: every outcome, internal failures
// included, is an HTTP response, so API Gateway never turns it into its own opaque 502 and the idempotency
// layer sees a status code it can classify (5xx is never recorded, so a retry runs the handler again).
package httpapi
