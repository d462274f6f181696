// Package idempotent makes AWS Lambda handlers safe to retry: a request carrying an idempotency key runs the
// handler at most once, and every duplicate gets the first response back.
//
// The engine knows nothing of DynamoDB or API Gateway. A Store keeps the records (memstore in memory,
// dynamostore in DynamoDB); adapters turn events into a Request and errors into answers (apigw for API Gateway
// REST, HTTP APIs and Function URLs with problem+json, sqs for SQS batches). Wrap covers any other function.
//
// # How a request travels
//
//	          Claim (one conditional write)
//	request ──────────────┬─────────────────────────────────────────────┐
//	                      │ key free                                    │ key held
//	                      ▼                                             ▼
//	                 INPROGRESS ── handler ok, recordable ──▶ COMPLETED ── same payload ──▶ replay
//	                  │      │                                  (TTL)  └── other payload ─▶ ErrPayloadMismatch
//	                  │      └── error, panic, not recordable ─▶ released (key free again)
//	                  └── lease ended (crash, timeout) ──▶ LeaseReRun: next request claims it again
//	                                                       LeaseRefuse: ErrOutcomeUnknown until expiry
//	   while INPROGRESS and the lease runs: ErrInProgress with a Retry-After, or with WithWait the answer once it
//	   is recorded (waiting at most the bound)
//
// With Spec.MergeClaim, for handlers whose only side effects are effects handed to the store, the handler runs
// first and the claim and the completion are one write (ClaimCompleter): one store call for a first request.
//
// A key is bound to a Scope (function, principal, method, route), and only its SHA-256 is stored. A record's
// payload fingerprint (see Target.Fingerprint) is a SHA-256 over the method, the route, the concrete path and
// query of an HTTP request and the body, prefixed with its version ("v2:"). Two JSON bodies share it only if
// encoding/json reads them alike: member order, whitespace and string escapes do not matter, number literals count
// as written, and an object whose member names are equal under case folding is compared as raw bytes. Records
// written with version 1 fingerprints (RFC 8785 bodies, a bare hex SHA-256) are compared through
// Request.LegacyFingerprint. Completion and release are fenced by a per-claim owner token: an invocation whose lease
// ended and whose key was claimed again can neither overwrite nor delete the newer record.
//
// When the store fails before the claim, the handler does not run (fail closed). When it fails after the handler
// ran, the response is still returned, the failure is logged and counted, and the key stays claimed until its
// lease ends: nothing runs twice because of a store fault. Handlers whose side effect is a write to the same store
// can make it atomic with the completion: see AddEffect.
//
// # Time
//
// The lease of a claim ends at the invocation's deadline (ctx.Deadline, which aws-lambda-go sets from Lambda's
// remaining time) plus a margin, or after WithLease without a deadline. Records are kept for WithRetention (24 h by
// default) and count as absent once expired, even while still in the store. Inject a Clock with WithClock to test
// leases and expiry without sleeping (idempotenttest.Clock).
//
// # Turning it off
//
// Set IDEMPOTENCY_DISABLED=true (or WithDisabled(true)) to run every request straight through, for local
// experiments. Never in production.
//
// # Observability
//
// WithOutcomeHook reports each decision; WithMetrics writes CloudWatch Embedded Metric Format counts per Outcome
// (executed, replayed, in_progress, mismatch, missing_key, invalid_key, store_error, ...); NewLogger builds a JSON
// slog.Logger whose "level" field Lambda's log-level filtering understands.
package idempotent
