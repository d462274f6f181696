// Package httpidem holds the HTTP semantics of idemkit's front ends in one place, and net/http middleware built on
// them.
//
// The middleware makes net/http handlers idempotent with the same contract as the API Gateway adapters of package
// apigw: one Idempotency-Key header grammar, scope, fingerprint, method and record policy, problem+json responses,
// Retry-After, Idempotent-Replayed and byte-identical replays. It serves any router and any place the handler runs:
// a server or container, or Lambda through a net/http adapter (aws-lambda-go's lambdaurl, the Lambda Web Adapter).
//
//	engine := idempotent.New(dynamostore.New(dynamodb.NewFromConfig(cfg), os.Getenv("IDEMPOTENCY_TABLE")))
//	idem := httpidem.Middleware(engine)
//	mux := http.NewServeMux()
//	mux.Handle("POST /payments", idem(http.HandlerFunc(createPayment)))
//
// Core is what the middleware and the apigw adapters share: a front end translates its request into an Incoming,
// hands Serve a function that runs the handler and returns its Response, and converts the Response back. Key
// extraction and grammar, the method and record policies, the scope, the fingerprint's inputs, the mapping of
// engine outcomes to problems and the recorded form of a response live here and nowhere else.
//
// # What the middleware adds to net/http
//
// The apigw package documents the contract (responses, methods, keys, payload, recording); under the middleware:
//
//   - Scope. The route is the pattern the standard ServeMux matched, without its method ("POST /payments/{id}"
//     scopes to "/payments/{id}"): wrap the handlers registered on the mux, since the pattern is set only inside
//     it. Another router, or a middleware around the whole mux, names the route with WithRouteFunc; without a
//     pattern the route is the escaped path. The caller is "anonymous" unless WithPrincipal names it (from the
//     request's authentication: r.Event is the *http.Request). The function is WithFunctionName's, else
//     AWS_LAMBDA_FUNCTION_NAME (set in Lambda, also under the Lambda Web Adapter), else empty.
//   - Fingerprint. Method, route, escaped path, raw query string (order and encoding count), the named headers
//     (WithFingerprintHeaders) and the body bytes. Repeated headers are separate values, so a repeated key header
//     is "several values", as is a key with a comma.
//   - Body. Read up to WithMaxBodyBytes (6 MiB by default; past it 413 body-too-large, the handler not run), then
//     handed to the handler unchanged in r.Body. Safe methods are passed through unread.
//   - Responses. The handler's response is buffered and written once the engine has settled the request, with
//     Idempotent-Replayed. It is recorded as written: status (200 when the handler sets none; informational
//     statuses are dropped), every header value in order (several Set-Cookie included) and the body (in base64 in
//     the record when it is not UTF-8), and replayed byte for byte.
//   - Streaming and hijacking. A handler that flushes (http.Flusher, http.ResponseController.Flush) streams: what
//     it wrote so far is sent with Idempotent-Replayed: false, the rest goes straight through, and the response is
//     not recorded; the key is released when the handler returns, so a retry runs the handler again. A hijacked
//     connection is the handler's alone (nothing is added to it) and is not recorded either. Keep such routes out
//     of the middleware unless running them twice is safe.
//   - Panics. The key is released and the panic goes on (net/http's server recovers it and closes the connection).
//
// Handlers answer their own errors in the same format with Problem.ServeHTTP.
package httpidem
