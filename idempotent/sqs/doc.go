// Package sqs de-duplicates the messages of SQS batches delivered to a Lambda function, and reports partial batch
// failures so that only the messages that need it are delivered again.
//
//	func main() {
//		engine := idempotent.New(dynamostore.New(dynamodb.NewFromConfig(cfg), os.Getenv("IDEMPOTENCY_TABLE")))
//		lambda.Start(sqs.Batch(engine, handleOrder))
//	}
//
// The event source mapping must report batch item failures (FunctionResponseTypes: [ReportBatchItemFailures]).
//
// # Keys and scope
//
// The key is the message id by default, which SQS keeps across redeliveries of one message: a message that was
// handled but whose deletion failed, or that another consumer got after a visibility timeout, is not handled
// twice. WithKeyField takes the key from the JSON body instead ("orderId"), which also catches a producer that
// sent one logical message twice; WithKeyFunc computes it. Keys are scoped to the queue ARN (eventSourceARN), or to
// the name given with WithName. The payload fingerprint is the body, canonicalised when it is JSON
// (WithPayloadFields to select fields).
//
// # Outcomes per message
//
//	handler succeeded, or key already completed     success (deleted from the queue)
//	handler returned an error                       failed; the key is released, so the redelivery runs again
//	key held by a running invocation                failed; delivered again after the visibility timeout
//	idempotency store failed                        failed; delivered again
//	same key, other body                            failed and logged at ERROR
//	earlier run lost, lease policy LeaseRefuse      failed and logged at ERROR
//	key missing (required) or malformed             failed and logged at ERROR
//	invocation context already done                 failed without running
//
// The last three rows cannot heal by themselves: such a message fails on every delivery until SQS moves it to the
// queue's dead-letter queue after maxReceiveCount receives (configure one, and alarm on it); without a redrive
// policy it is retried until its retention period ends.
//
// # Order and concurrency
//
// Messages are processed one at a time in the order of the batch. FIFO queues require it: a message group's
// messages must not overtake each other. For FIFO queues (detected by the MessageGroupId attribute or a ".fifo"
// queue ARN) Batch follows the rule AWS documents for partial batch responses: after the first failure it stops
// and reports every later message of the batch as failed, unprocessed. WithSkipGroupOnError narrows that to the
// failed message's group. For standard queues, which promise no order, WithConcurrency processes several
// messages at once.
package sqs
