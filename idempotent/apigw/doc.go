// Package apigw makes API Gateway and Lambda Function URL handlers idempotent, answering in HTTP as the IETF
// draft "The Idempotency-Key HTTP Header Field" describes instead of failing the invocation.
//
// There is one entry point per event type, each taking the engine, the handler and options:
//
//	REST(e, h, opts...)         API Gateway REST APIs, Lambda proxy integration (payload format 1.0)
//	HTTP(e, h, opts...)         API Gateway HTTP APIs (payload format 2.0)
//	FunctionURL(e, h, opts...)  Lambda Function URLs
//
// The adapters only translate their events: the HTTP semantics below (keys, policies, scope, fingerprint,
// problems, the recorded response) are package httpidem's core, which also serves net/http handlers with the same
// contract (httpidem.Middleware). The options, Request and Problem here are httpidem's under their old names.
//
// A typical function:
//
//	func main() {
//		engine := idempotent.New(dynamostore.New(dynamodb.NewFromConfig(cfg), os.Getenv("IDEMPOTENCY_TABLE")))
//		lambda.Start(apigw.REST(engine, createPayment))
//	}
//
// # Responses
//
// Every response of a wrapped route carries Idempotent-Replayed: "true" when it is a recorded response replayed
// without running the handler, "false" otherwise. Problems are RFC 9457 application/problem+json documents with
// type, title, status and detail; their detail never holds an internal error or another request's response.
//
//	first request with a new key        the handler's response
//	same key and payload, completed     the recorded status, headers, multiValueHeaders, cookies, body and
//	                                    isBase64Encoded, byte for byte
//	same key, other payload             422 payload-mismatch
//	same key, first still running       with idempotent.WithWait: the first one's response once it completes
//	                                    (waiting at most the bound); else, or when the bound is reached,
//	                                    409 in-progress, Retry-After: how long the route's requests take (see
//	                                    idempotent.InProgressError), at least 1 s, at most the first one's lease
//	first crashed, lease ended          the handler runs again (idempotent.LeaseReRun, the default), or
//	                                    409 outcome-unknown without Retry-After (idempotent.LeaseRefuse)
//	key absent on a required route      400 missing-key
//	key malformed                       400 invalid-key, the reason in detail: empty, longer than 255 bytes, not
//	                                    visible ASCII, several values, or containing a comma
//	store failed before the claim       503 store-unavailable, Retry-After: 2 (fail closed: the handler did not run);
//	                                    500 store-rejected without Retry-After when the store refused for good
//	                                    (idempotent.ErrPermanent: a missing table, access denied)
//	store failed after the handler ran  the handler's answer when it had no atomic effects (the record stays
//	                                    INPROGRESS until its lease ends); with effects 503 store-unavailable,
//	                                    Retry-After: 2, "whether it took effect is unknown" (or 500 when permanent)
//	same key, response not recordable   409 response-unavailable, no Retry-After (too large for dynamostore to
//	                                    record; the handler is not run again)
//	atomic effect's condition failed    409 effect-failed, Retry-After: 1 (nothing was written; retry runs again)
//	handler returned an error           the error, unchanged (API Gateway answers 502 as it would without this
//	                                    package); the key is released, so a retry runs the handler again
//	handler panicked                    the key is released and the panic continues
//
// problems.md in this directory documents each problem type; WithProblemTypeBase points the type URIs elsewhere.
// Handlers can answer their own errors in the same format with Problem.
//
// # Methods
//
// GET, HEAD, OPTIONS and TRACE requests run straight through (no key needed, none used, nothing recorded): they
// have no side effects to protect, and replaying a read would serve stale data. So one function can serve
// GET /payments/{id} beside POST /payments under one wrapper. PUT and DELETE are idempotent by HTTP semantics:
// without a key they run straight through too, with a key they are recorded like POST
// (WithKeyRequiredForPutAndDelete refuses them without a key). Every other method needs a key unless
// WithKeyOptional is given.
//
// # Keys
//
// The key comes from the Idempotency-Key header by default (WithKeyHeader for another), matched without regard
// to case in the headers and multiValueHeaders of REST events and in the lower-cased headers of HTTP API and
// Function URL events. HTTP APIs and Function URLs join a repeated header's values with commas, so a key with a
// comma is refused on every event type alike. WithKeyField reads the key from the JSON body instead, and
// WithKeyFunc computes it. A key is required unless WithKeyOptional is given.
//
// # Scope
//
// A key is bound to the function, the caller, the HTTP method and the route; the same key in another scope is
// another record. The function is the Lambda function's name (AWS_LAMBDA_FUNCTION_NAME; WithFunctionName sets
// another), so functions sharing one table never answer each other's requests. The caller is the first of these
// found in the event, named after its source so that no authorizer's value can equal another source's or the
// unauthenticated scope:
//
//	REST API       requestContext.authorizer.claims.sub (Cognito user pool)   cognito:<sub>
//	               requestContext.authorizer.principalId (Lambda authorizer)   lambda:<principalId>
//	               requestContext.identity.userArn (IAM)                       iam:<arn>
//	               any other authorizer context (integrationLatency aside)     ctx:<SHA-256 of its JSON>
//	HTTP API       requestContext.authorizer.jwt.claims.sub                    jwt:<sub>
//	               requestContext.authorizer.lambda.principalId                lambda:<principalId>
//	               requestContext.authorizer.iam.userArn                       iam:<arn>
//	               any other authorizer (a Lambda authorizer with simple       ctx:<SHA-256 of its JSON>
//	               responses has a context and no principalId)
//	Function URL   requestContext.authorizer.iam.userArn                       iam:<arn>
//	               an IAM authorizer without a user ARN                        ctx:<SHA-256 of its JSON>
//	all            no authorizer                                               anonymous
//
// WithPrincipal overrides it (it sees the value above, "" without an authorizer). A context hash names a caller as
// long as the authorizer returns the same context for them; an authorizer that puts per-request values (a
// timestamp, a request id) in its context makes every retry a new record: name the caller with WithPrincipal then.
// The route is the resource template for REST APIs, the path of the route key for HTTP APIs (the raw path on
// "$default") and the raw path for Function URLs, which have no templates (WithRoute sets a fixed one).
// WithLegacyScope derives IDs as releases before the function and the namespaces did, for an upgrade (see the
// README).
//
// # Payload
//
// The fingerprint (idempotent.Target) covers the method, the route, the concrete path (so its path parameters),
// the query string and the body; a duplicate with another fingerprint is a 422. The body is decoded from base64
// when the event says so; a JSON body is compared by what encoding/json reads from it: member order, whitespace
// and string escapes do not matter, number literals count as written (2000 and 2e3 differ), and an object with
// member names equal under case folding is compared byte for byte. The query string of HTTP API and Function URL
// events is compared as received (parameter order and percent-encoding count); REST events carry only the decoded
// parameter maps, compared by name, each name's values in order. Headers are not covered, since they change
// between retries of one request (tracing ids, dates, refreshed tokens) without changing its meaning;
// WithFingerprintHeaders adds named ones. WithPayloadFields restricts the body's part to selected JSON fields
// (see idempotent.SelectFields).
//
// # Recording
//
// By default 2xx, 3xx and 4xx responses are recorded, except 400, 408, 422, 425 and 429, which release the key so
// a corrected request can use it; 5xx responses and handler errors are never recorded (see DefaultRecordStatus
// and WithRecordStatus). Replays are faithful to what the first caller received: the recorded form is the JSON the
// Lambda runtime itself sends to API Gateway.
package apigw
