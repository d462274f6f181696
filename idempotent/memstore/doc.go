// Package memstore is an in-memory idempotent.Store with the same semantics as the DynamoDB store: conditional
// claims judged at the caller's instant, expired records treated as absent, and completion and release fenced by
// the owner token. Use it in tests and for local runs of a single process; records do not survive the process.
//
// It refuses atomic effects (idempotent.AddEffect) with idempotent.ErrUnsupportedEffect: it cannot commit another
// system's writes in one step. Test handlers that use effects against DynamoDB Local with dynamostore.
package memstore
