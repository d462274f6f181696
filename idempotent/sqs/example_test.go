package sqs_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-lambda-go/events"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/memstore"
	"github.com/idemkit/idemkit/idempotent/sqs"
)

// A batch delivered twice: the second delivery skips the messages already handled and reruns only the one that
// failed the first time.
func ExampleBatch() {
	engine := idempotent.New(memstore.New(), idempotent.WithDisabled(false)) // dynamostore in production
	attempts := map[string]int{}
	handler := sqs.Batch(engine, func(ctx context.Context, m events.SQSMessage) error {
		attempts[m.MessageId]++
		if m.MessageId == "msg-2" && attempts[m.MessageId] == 1 {
			return errors.New("payment provider timed out")
		}
		return nil
	}, sqs.WithLogger(nil))

	arn := "arn:aws:sqs:us-east-1:123456789012:orders"
	batch := events.SQSEvent{Records: []events.SQSMessage{
		{MessageId: "msg-1", Body: `{"orderId":"ord-1"}`, EventSourceARN: arn},
		{MessageId: "msg-2", Body: `{"orderId":"ord-2"}`, EventSourceARN: arn},
	}}
	first, _ := handler(context.Background(), batch)
	again, _ := handler(context.Background(), batch)

	fmt.Println("first delivery failures:", first.BatchItemFailures)
	fmt.Println("second delivery failures:", again.BatchItemFailures)
	fmt.Println("attempts:", attempts)
	// Output:
	// first delivery failures: [{msg-2}]
	// second delivery failures: []
	// attempts: map[msg-1:1 msg-2:2]
}
