// Package faultinject makes DynamoDB misbehave on purpose, for tests of the idempotency engine's failure paths.
//
// An Injector sits in front of DynamoDB, either as the AWS SDK's HTTP transport (RoundTripper, Client) inside the
// test process, or as a loopback reverse proxy (Proxy) that another process reaches through
// AWS_ENDPOINT_URL_DYNAMODB. Both use the same rules. Every request is classified by its DynamoDB operation (the
// X-Amz-Target header) and by the step of the idempotency protocol it carries, read from its JSON body:
//
//	PhaseClaim           PutItem of an INPROGRESS record
//	PhaseComplete        PutItem of a COMPLETED record
//	PhaseAtomicComplete  TransactWriteItems holding the Put of a COMPLETED record (completion with effects)
//	PhaseRelease         DeleteItem on the idempotency table
//	PhaseRead            GetItem on the idempotency table
//	PhaseOther           everything else: the handler's own reads and writes, table management
//
// A Rule picks requests (operation, phase, table) and the calls among them it applies to (Always, Nth, First,
// From), and says what goes wrong:
//
//	Latency       the request waits (a short real Delay, or a Gate the test closes), then goes through
//	Throttle      HTTP 400 ProvisionedThroughputExceededException, as DynamoDB answers; nothing applied
//	ServerError   HTTP 500 InternalServerError; nothing applied
//	ConnReset     the connection breaks before the request reaches DynamoDB; nothing applied
//	ResponseLost  DynamoDB applies the request, then the connection breaks: the caller cannot tell (ambiguous)
//	Timeout       the request hangs until its context ends; nothing applied
//
// Error answers use DynamoDB's wire format (Content-Type application/x-amz-json-1.0, a JSON body with __type and
// message), so the SDK turns them into its typed errors and applies its own retry policy to them. Every attempt
// is recorded, so a test counts what really went over the wire, SDK retries included:
//
//	inj := faultinject.New(func(o *faultinject.Options) { o.IdempotencyTable = table })
//	inj.Add(faultinject.Rule{Phase: faultinject.PhaseClaim, When: faultinject.First(2), Fault: faultinject.Fault{Kind: faultinject.Throttle}})
//	client := dynamodb.New(opts, func(o *dynamodb.Options) {
//		o.HTTPClient = inj.Client(nil)
//		o.Retryer = faultinject.Retryer(3) // the SDK's policy, without the waits
//	})
//	...
//	inj.Count("PutItem", faultinject.PhaseClaim) // attempts, SDK retries included
//
// TCPProxy applies the connection-level kinds (ConnReset, ResponseLost, Timeout) to any request/response protocol
// over TCP, such as Redis's: a bufio.SplitFunc frames the client's requests and a TCPRule picks each one's fault.
//
// Nothing here sleeps to simulate time: Latency's real Delay is meant for a few milliseconds, and longer holds use
// a Gate channel; Timeout ends with the request's context.
package faultinject
