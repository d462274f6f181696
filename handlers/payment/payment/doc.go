// Package payment is the business logic of the example service's payment function: POST /payments charges a
// card once per idempotency scope and stores the payment; GET /payments/{id} returns it. The HTTP API it serves is
// described in the repository's README ("Walkthrough") and held to by the e2e tests.
//
// # Exactly one charge, in layers
//
// The idempotency engine makes a retried request replay the recorded response. Beneath it the service defends
// itself: the payment ID is derived from the idempotency scope ID (PaymentID); the processor is given the ID as
// its idempotency reference and de-duplicates charges by it, across instances (the SimulatedProcessor through a
// durable Ledger, DynamoLedger in the deployed function); and the payment item is written with the condition
// attribute_not_exists(id). When the engine runs the request again (its completion failed or came too late,
// its lease ended after a crash, its record expired), the card is therefore not charged again, and no second
// payment is written. Only when the processor reports a charge it had made before does the service read the
// payment, to answer with it when it exists; so a first request costs no read.
//
// The final write goes through a Committer, so the wiring decides whether it is a plain PutItem
// (DirectCommitter) or part of the transaction that completes the idempotency record.
//
// # Card data
//
// The card number and CVV live only in the request and in the Card value handed to the Processor. Card redacts
// itself in every formatting path; the stored item holds brand, last four digits and expiry; errors never echo
// submitted values. The description, which is stored and returned, refuses anything that looks like a card
// number (httpapi.ContainsCardNumber) with a 400 that does not repeat it.
//
// # Responses
//
//	201  payment created, or this request's payment already existed (same details); Location: /payments/{id}
//	400  invalid body (errors lists every field), malformed JSON, missing/malformed Idempotency-Key without the
//	     engine; 413 body over 64 KiB
//	402  card declined (decline_code); nothing is stored
//	404  unknown payment id, unknown route; 405 wrong method (Allow)
//	409  the payment was created concurrently and could not be read back; Retry-After: 1
//	422  the Idempotency-Key's payment exists, or its reference was charged, with different details
//	502  processor failure (the charge did not happen; retry with the same key)
//	503  DynamoDB transient fault (throttled, contended, 5xx, connection reset or timed out on every SDK
//	     attempt); Retry-After: 1
//	500  a permanent DynamoDB fault (missing table, access denied, malformed request), logged at ERROR
package payment
