// Package dynamostore keeps idempotency records in a DynamoDB table: an idempotent.Store built on conditional
// writes, so that at most one invocation holds a key and only that invocation can complete or release it.
//
//	store := dynamostore.New(dynamodb.NewFromConfig(cfg), os.Getenv("IDEMPOTENCY_TABLE"))
//	engine := idempotent.New(store)
//
// # Round trips
//
//   - Claim: one PutItem conditioned on
//     attribute_not_exists(id) OR expiration <= :now_s OR (status = INPROGRESS AND in_progress_expiration <= :now_ms),
//     the last clause only under the takeover policy (idempotent.LeaseReRun). When the condition fails, the live
//     record comes back in the same call (ReturnValuesOnConditionCheckFailure ALL_OLD); should DynamoDB leave it
//     out, one consistent GetItem reads it. If that record is INPROGRESS with the claim's own owner token, an
//     earlier attempt of the same PutItem was applied and only its answer lost (the SDK retried): the claim is won.
//   - Complete: one PutItem of the COMPLETED item conditioned on status = INPROGRESS AND owner = :owner; with
//     effects, one TransactWriteItems holding that Put and the effects, with a ClientRequestToken derived from the
//     owner token.
//   - Release: one DeleteItem with the same owner fence, or attribute_not_exists(id): an absent record (an earlier
//     attempt deleted it, its answer lost) is released already.
//   - Get: one consistent GetItem.
//   - ClaimComplete (idempotent.Spec.MergeClaim): one PutItem of the COMPLETED item under the claim's condition,
//     or with effects one TransactWriteItems holding that Put and the effects; the live record comes back in the
//     cancellation reason (ALL_OLD). A TransactionConflict cancellation is idempotent.ErrRecordChanged.
//
// Through the engine a first request costs two calls (PutItem, PutItem), a duplicate, a payload mismatch or a
// request while the first is in progress one call (the failed PutItem). In merged mode a first request, a
// duplicate and a mismatch cost one call each; a request that waits (idempotent.WithWait) adds one consistent
// GetItem per pause.
//
// # Table
//
// Partition key "id" (S), no sort key, on-demand billing, TTL on "expiration". CreateTable makes one; in SAM:
//
//	IdempotencyTable:
//	  Type: AWS::DynamoDB::Table
//	  Properties:
//	    BillingMode: PAY_PER_REQUEST
//	    AttributeDefinitions: [{AttributeName: id, AttributeType: S}]
//	    KeySchema: [{AttributeName: id, KeyType: HASH}]
//	    TimeToLiveSpecification: {AttributeName: expiration, Enabled: true}
//
// An item (default attribute names, those of Powertools for AWS Lambda; all configurable in Options):
//
//	id                      S  KeyPrefix + record ID (64 hex: SHA-256 of scope and key; the raw key is never stored)
//	status                  S  INPROGRESS | COMPLETED
//	expiration              N  end of retention, epoch seconds rounded up (the TTL attribute)
//	in_progress_expiration  N  end of the claim's lease, epoch milliseconds rounded up (INPROGRESS only)
//	validation              S  payload fingerprint
//	owner                   S  token of the claiming invocation (kept on the COMPLETED item)
//	data                    S | B  the response: S when stored as it is and valid UTF-8; B when binary or compressed
//	data_encoding           S  only when data is not the response as it is: "gzip", or "too-large" (no data)
//
// A record past its expiration counts as absent even before DynamoDB's TTL sweeper deletes it (which can take
// days): the claim condition and Get compare the expiration with the caller's clock.
//
// With Options.SortKeyAttr set (the sort-key layout, as Powertools' sort_key_attr), the partition key holds
// Options.StaticPartitionKey ("idempotency" by default) for every record and the sort key holds KeyPrefix + record
// ID, so the records can live in a table shared with other data.
//
// # Large responses
//
// Responses from Options.CompressThreshold (4 KiB) on are gzip-compressed when that makes them smaller. A response
// whose item would still exceed DynamoDB's 400 KB limit is not stored, and it does not cause a second execution
// either: Complete records the key as COMPLETED with data_encoding "too-large" and no data, the first caller gets
// the handler's response, and until the record expires a duplicate with the same payload fails with an error
// wrapping ErrResponseTooLarge (a duplicate with another payload still gets idempotent.ErrPayloadMismatch). Keeping
// the claim INPROGRESS instead would let the next request run the handler again once the lease ends.
//
// # Atomic completion
//
// A handler whose side effect is a DynamoDB write can hand it to the engine with Put, Update, Delete or
// ConditionCheck (or idempotent.AddEffect with a types.TransactWriteItem). The write then commits in the same
// TransactWriteItems as the COMPLETED record, or not at all. When an effect's condition fails, Complete returns an
// error wrapping idempotent.ErrEffectFailed that names the effect and its cancellation reason, nothing is written
// and the engine releases the key. At most MaxEffects (99) effects fit in one transaction; more, or effects of
// another type, fail with idempotent.ErrUnsupportedEffect before anything is written.
//
// # Errors
//
// A failed fence (the record is absent, COMPLETED or held by another owner; for Release only the last two) wraps
// idempotent.ErrFenced. A call DynamoDB refuses for good (ValidationException, ResourceNotFoundException: a
// missing table, AccessDeniedException, UnrecognizedClientException) wraps idempotent.ErrPermanent, so the engine
// does not retry it and the apigw adapters answer 500 without Retry-After; anything else (throttling, 5xx,
// connection resets, timeouts) is transient: 503 with Retry-After. SDK errors are returned wrapped, after the
// SDK's standard retryer has dealt with throttling; this package adds no retries.
//
// # The SDK's checksum warning
//
// Pass SkipAbsentChecksum to the DynamoDB client (dynamodb.NewFromConfig(cfg, dynamostore.SkipAbsentChecksum)):
// without it the SDK logs "WARN failed to close HTTP response body" for every response that lacks a CRC32
// header, which includes every duplicate's ConditionalCheckFailedException.
//
// # IAM
//
// The function needs dynamodb:PutItem, dynamodb:GetItem and dynamodb:DeleteItem on the idempotency table, and for
// atomic completion dynamodb:ConditionCheckItem, dynamodb:PutItem, dynamodb:UpdateItem or dynamodb:DeleteItem on
// the tables its effects write (TransactWriteItems is authorised per contained action). In SAM:
// DynamoDBCrudPolicy on the table.
package dynamostore
