// Package payment is the business logic of the example service's payment function: POST /payments charges a
// card once per idempotency scope and stores the payment; GET /payments/{id} returns it. The HTTP API it serves is
// described in the repository's README ("Walkthrough") and held to by the e2e tests.
//
// # Exactly one charge, in layers
//
// The idempotency engine makes a retried request replay the recorded response. Beneath it the service defends
// itself: the payment ID is derived from the idempotency scope ID (PaymentID), the service reads that ID before
// charging and answers with the stored payment if it exists, the processor is given the ID as its idempotency
// reference, and the payment item is written with the condition attribute_not_exists(id). Even a lost
// idempotency record therefore cannot create a second payment.
//
// The final write goes through a Committer, so the wiring decides whether it is a plain PutItem
// (DirectCommitter) or part of the transaction that completes the idempotency record.
//
// # Card data
//
// The card number and CVV live only in the request and in the Card value handed to the Processor. Card redacts
// itself in every formatting path; the stored item holds brand, last four digits and expiry; errors never echo
// submitted values.
//
// # Responses
//
//	201  payment created, or this request's payment already existed (same details); Location: /payments/{id}
//	400  invalid body (errors lists every field), malformed JSON, missing/malformed Idempotency-Key without the
//	     engine; 413 body over 64 KiB
//	402  card declined (decline_code); nothing is stored
//	404  unknown payment id, unknown route; 405 wrong method (Allow)
//	409  the payment was created concurrently and could not be read back; Retry-After: 1
//	422  the Idempotency-Key's payment exists with different details
//	502  processor failure; 503 DynamoDB throttled or contended (Retry-After); 500 anything else
package payment
