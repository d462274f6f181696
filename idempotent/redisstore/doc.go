// Package redisstore keeps idempotency records in Redis (7.0 or later), Valkey, Amazon ElastiCache (Redis OSS or
// Valkey) or Amazon MemoryDB: an idempotent.Store with the same semantics as dynamostore, built on Lua scripts that
// run atomically on the server, so that at most one invocation holds a key and only that invocation can complete
// or release it.
//
//	opt, err := redis.ParseURL(os.Getenv("REDIS_URL")) // rediss://user:password@host:6379/0 for TLS and AUTH
//	if err != nil { ... }
//	engine := idempotent.New(redisstore.New(redis.NewClient(opt)))
//
// In cluster mode use redis.NewClusterClient (redis.ParseClusterURL) on the configuration endpoint: every
// command touches exactly one key, so no hash tags are needed.
//
// # Round trips
//
//   - Claim: one EVALSHA of a script that writes the INPROGRESS record when the key is absent, expired, or (under
//     idempotent.LeaseReRun) INPROGRESS with an ended lease, and otherwise returns the live record in the same
//     reply. If the live record is INPROGRESS with the claim's own owner token, an earlier attempt of the same
//     call was applied and only its answer lost (go-redis retries a command whose connection broke): the claim
//     is won.
//   - Complete: one EVALSHA that replaces the record when it is INPROGRESS and held by the owner (the fence), or
//     succeeds without writing when the record already is exactly this completion (an earlier attempt applied).
//   - Release: one EVALSHA that deletes the record when it is INPROGRESS and held by the owner, or finds it absent.
//   - Get: one HMGET.
//
// Through the engine a first request costs two round trips, a duplicate, a payload mismatch or a request while
// the first is in progress one. After a server restart or SCRIPT FLUSH (and on each cluster node) the first call
// of each script costs one more: EVALSHA answers NOSCRIPT, and EVAL runs the script and caches it again.
//
// Why a script rather than WATCH/MULTI/EXEC: a claim must read the record, judge it and write, atomically. With
// WATCH that is three round trips at least (WATCH and HGETALL, then MULTI...EXEC), optimistic, so concurrent
// claims of one key make all but one retry, and the connection holding the WATCH cannot be shared. A script is
// one round trip, runs to completion without interleaving, and never retries. Scripts are cached by SHA-1 and
// sent as EVALSHA; Redis 7 replicates their effects, not the script.
//
// # Records
//
// One hash per record, at Options.KeyPrefix + record ID ("idempotency:" + 64 hex by default). Its fields carry
// dynamostore's default attribute names:
//
//	status                  INPROGRESS | COMPLETED
//	expiration              end of retention, epoch seconds rounded up
//	in_progress_expiration  end of the claim's lease, epoch milliseconds rounded up (INPROGRESS only)
//	validation              payload fingerprint
//	owner                   token of the claiming invocation (kept on the COMPLETED record)
//	data                    the response: as it is, or gzip-compressed
//	data_encoding           only when data is not the response as it is: "gzip", or "too-large" (no data)
//
// # Time
//
// Expiry and leases are judged at the engine's instant (idempotent.Claim.Now and Get's now), passed to the
// scripts as arguments, never at the server's clock: an injected clock (idempotenttest.Clock) drives them, and a
// record past its expiration counts as absent whatever the server thinks. The server's own expiry only frees the
// memory of records past retention: a claim sets the key's time to live to the rounded-up expiration minus now, a
// completion moves it by as much as the record's expiration moved. Both are durations measured on the engine's
// clock and applied on the server's, so a difference between the two clocks cannot make the server delete a
// record early.
//
// # Large responses
//
// Responses from Options.CompressThreshold (4 KiB) on are gzip-compressed when that makes them smaller. A response
// still larger than Options.MaxDataSize (1 MiB) is not stored, and it does not cause a second execution either:
// Complete records the key as COMPLETED with data_encoding "too-large" and no data, the first caller gets the
// handler's response, and until the record expires a duplicate with the same payload fails with an error wrapping
// ErrResponseTooLarge (a duplicate with another payload still gets idempotent.ErrPayloadMismatch).
//
// # Effects
//
// Complete refuses effects (idempotent.AddEffect) with idempotent.ErrUnsupportedEffect and writes nothing: the
// engine then releases the key and the request fails. Redis cannot commit a write to another system (a DynamoDB
// table, a SQL row) with the record, and running arbitrary Redis commands in the completion script would break in
// cluster mode as soon as their keys live on other slots. Handlers on this store make their side effects
// idempotent themselves (a conditional write keyed by idempotent.FromContext's record ID, as the example payment
// service does).
//
// # Errors
//
// A failed fence (the record is absent, COMPLETED or held by another owner; for Release only the last two) wraps
// idempotent.ErrFenced. An error reply that no retry can fix (WRONGTYPE, NOPERM, WRONGPASS, an unknown command, a
// record this package cannot read; see Permanent) wraps idempotent.ErrPermanent, so the engine stops retrying a
// completion and apigw answers 500 rather than 503. Network errors, timeouts and the replies of a server that is
// loading, failing over, resharding, busy or out of memory are transient. go-redis retries a command whose
// connection broke or timed out (Options.MaxRetries, 3 by default); every script is safe to run twice, so a retry
// after a lost answer is harmless. Set redis.Options.ContextTimeoutEnabled so that the engine's deadlines bound
// each call.
//
// # Durability
//
// A record is as durable as the server. A primary that restarts without persistence (an ElastiCache node without
// replicas, a redis-server without save points or append-only file) comes back empty: every key is free again and a
// duplicate that arrives afterwards runs the handler a second time. Use replication with automatic failover
// (ElastiCache Multi-AZ), MemoryDB, or appendonly with appendfsync always where that matters; with asynchronous
// replication a failover can still lose the last writes acknowledged by the old primary.
package redisstore
