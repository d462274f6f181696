// Package apigw makes API Gateway and Lambda Function URL handlers idempotent, answering in HTTP as the IETF
// draft "The Idempotency-Key HTTP Header Field" describes instead of failing the invocation.
//
// There is one entry point per event type, each taking the engine, the handler and options:
//
//	REST(e, h, opts...)         API Gateway REST APIs, Lambda proxy integration (payload format 1.0)
//	HTTP(e, h, opts...)         API Gateway HTTP APIs (payload format 2.0)
//	FunctionURL(e, h, opts...)  Lambda Function URLs
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
//	store failed before the claim       503 store-unavailable, Retry-After: 2 (fail closed: the handler did not run)
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
// # Safe methods
//
// GET, HEAD, OPTIONS and TRACE requests run straight through (no key needed, none used, nothing recorded): they
// have no side effects to protect, and replaying a read would serve stale data. So one function can serve
// GET /payments/{id} beside POST /payments under one wrapper.
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
// A key is bound to the caller, the HTTP method and the route; the same key in another scope is another record.
// The caller is taken from the authorizer context:
//
//	REST API       requestContext.authorizer.claims.sub (Cognito user pool), requestContext.authorizer.principalId
//	               (Lambda authorizer), requestContext.identity.userArn (IAM)
//	HTTP API       requestContext.authorizer.jwt.claims.sub, requestContext.authorizer.lambda.principalId,
//	               requestContext.authorizer.iam.userArn
//	Function URL   requestContext.authorizer.iam.userArn
//
// the first one present, else "anonymous"; WithPrincipal overrides it. The route is the resource template for
// REST APIs, the path of the route key for HTTP APIs (the raw path on "$default") and the raw path for Function
// URLs, which have no templates (WithRoute sets a fixed one).
//
// # Payload
//
// The payload fingerprint covers the method, the route and the body, decoded from base64 when the event says so
// and canonicalised when it is JSON (key order and whitespace do not matter). WithPayloadFields restricts it to
// selected JSON fields.
//
// # Recording
//
// By default 2xx, 3xx and 4xx responses are recorded, except 400, 408, 422, 425 and 429, which release the key so
// a corrected request can use it; 5xx responses and handler errors are never recorded (see DefaultRecordStatus
// and WithRecordStatus). Replays are faithful to what the first caller received: the recorded form is the JSON the
// Lambda runtime itself sends to API Gateway.
package apigw
