package payment

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// The payment function's variable naming the simulated processor's table, and its local default (the template's
// logical ID). Declared here rather than with the shared variables, as only the payment function reads it.
const (
	EnvProcessorTable     = "PROCESSOR_TABLE"
	DefaultProcessorTable = "ProcessorTable"
)

// DefaultLedgerRetention is how long the DynamoDB ledger remembers a reference: a week, well past the
// idempotency record's 24 h, so a request retried after its record expired is still recognised and not charged
// again. A processor must keep its idempotency keys at least as long as the service's records live.
const DefaultLedgerRetention = 7 * 24 * time.Hour

// DynamoLedger is a Ledger in a DynamoDB table of the simulated processor's own (partition key "reference",
// TTL attribute "expiration"; ProcessorTable in template.yaml). One conditional PutItem per charge: every instance
// of the function shares it, so a reference is charged once across instances, as a real processor's
// idempotency keys are.
type DynamoLedger struct {
	DB    PutItemAPI
	Table string
	// Now is the clock for the expiration. Default (nil): time.Now.
	Now func() time.Time
	// Retention is how long a reference is kept. Default (zero): DefaultLedgerRetention.
	Retention time.Duration
}

// Record implements Ledger.
func (l DynamoLedger) Record(ctx context.Context, e LedgerEntry) (*LedgerEntry, error) {
	now, retention := time.Now, l.Retention
	if l.Now != nil {
		now = l.Now
	}
	if retention <= 0 {
		retention = DefaultLedgerRetention
	}
	t := now()
	e.Expiration = t.Add(retention).Unix()
	av, err := attributevalue.MarshalMap(e)
	if err != nil {
		return nil, err
	}
	_, err = l.DB.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(l.Table),
		Item:      av,
		// An entry past its expiration is forgotten even before DynamoDB's TTL sweeper deletes it.
		ConditionExpression:                 aws.String("attribute_not_exists(#ref) OR #exp < :now"),
		ExpressionAttributeNames:            map[string]string{"#ref": "reference", "#exp": "expiration"}, // both reserved words
		ExpressionAttributeValues:           map[string]types.AttributeValue{":now": &types.AttributeValueMemberN{Value: fmt.Sprint(t.Unix())}},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err == nil {
		return nil, nil
	}
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) {
		return nil, err
	}
	if len(ccf.Item) == 0 {
		return nil, fmt.Errorf("ledger: reference exists but DynamoDB did not return it: %w", err)
	}
	var old LedgerEntry
	if err := attributevalue.UnmarshalMap(ccf.Item, &old); err != nil {
		return nil, err
	}
	return &old, nil
}
