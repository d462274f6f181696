// Package user is the business logic of the example service's user function: POST /users registers a user
// whose e-mail address is unique, GET /users/{id} returns one. The HTTP API it serves is described in the
// repository's README ("Walkthrough") and held to by the e2e tests.
//
// # Key design
//
// One table, partition key "id" (S), two kinds of item:
//
//	id = "usr_<26 base32>"          kind = "user"   name, email, created_at
//	id = "EMAIL#<normalised email>" kind = "email"  user_id
//
// A registration is one TransactWriteItems that puts both, each conditional on attribute_not_exists(id). The
// database, not a read-then-write in the function, therefore enforces that an address belongs to one user,
// whether or not the request carries an Idempotency-Key. The cancellation reasons tell which condition failed:
// the e-mail item -> 409 (address taken), the user item -> the ID is taken. GET only serves IDs of the "usr_"
// shape, so an e-mail item can never be read through the API.
//
// With Options.Effect (the function's main: idempotent.AddEffect, under apigw.WithMergedClaim) the two Puts are
// handed to the idempotency engine instead, which commits them in the same TransactWriteItems as the idempotency
// record: a request with a key is one DynamoDB call. If their conditions cancel that transaction, the engine asks
// the service again with the effects refused, and the service runs its own transaction and answers as above.
//
// # User IDs
//
// With an idempotency scope (a request with an Idempotency-Key through the engine) the ID is derived from the
// scope ID, like payment IDs: a retry whose idempotency record is gone writes the same ID, finds its own user and
// answers 201 with it instead of 409. Without a key the ID is 128 random bits from crypto/rand.
//
// # Normalisation
//
// The name is trimmed and must be 1-100 characters without control characters. The e-mail must be a bare
// addr-spec that net/mail accepts, with a dotted domain, at most 254 characters; it is trimmed and lower-cased
// as a whole before it is stored, compared or returned (providers treat local parts case-insensitively, and two
// addresses that differ only in case must count as one registration).
package user
