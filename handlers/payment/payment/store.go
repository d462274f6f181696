package payment

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// DB is the part of *dynamodb.Client the service calls: a consistent GetItem for GET /payments/{id} and when the
// processor reports a charge it had made before, and PutItem through the DirectCommitter. Declared here, where it is consumed, so unit
// tests can fake it with a few functions.
type DB interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
}

// Committer decides how the new payment item is written. The service builds the write, conditional on the
// payment not existing yet, and hands it over:
//
//   - DirectCommitter writes it at once with PutItem;
//   - an idempotency-aware committer adds it to the transaction that marks the idempotency record COMPLETED
//     (idempotent.AddEffect), so the payment exists if and only if its response is recorded.
//
// Commit returns an error wrapping ErrConflict when the write's condition failed, i.e. the payment already
// exists. A committer that defers the write returns nil; a conflict then surfaces from the idempotency engine
// as a failed request (409, not recorded), and the client's retry, whose charge the processor reports as
// replayed, finds the payment.
type Committer interface {
	Commit(ctx context.Context, w types.TransactWriteItem) error
}

// CommitterFunc adapts a function to Committer.
type CommitterFunc func(ctx context.Context, w types.TransactWriteItem) error

// Commit calls f.
func (f CommitterFunc) Commit(ctx context.Context, w types.TransactWriteItem) error { return f(ctx, w) }

// ErrConflict means the item the write was conditional on not existing already exists.
var ErrConflict = errors.New("payment already exists")

// PutItemAPI is the single call DirectCommitter makes.
type PutItemAPI interface {
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
}

// DirectCommitter performs a Put write as one PutItem with the same condition.
type DirectCommitter struct {
	DB PutItemAPI
}

// Commit writes w.Put. Other kinds of write (Update, Delete, ConditionCheck) are not needed by the service and
// are refused rather than silently dropped.
func (c DirectCommitter) Commit(ctx context.Context, w types.TransactWriteItem) error {
	p := w.Put
	if p == nil || w.Update != nil || w.Delete != nil || w.ConditionCheck != nil {
		return errors.New("payment: DirectCommitter commits exactly one Put")
	}
	_, err := c.DB.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                           p.TableName,
		Item:                                p.Item,
		ConditionExpression:                 p.ConditionExpression,
		ExpressionAttributeNames:            p.ExpressionAttributeNames,
		ExpressionAttributeValues:           p.ExpressionAttributeValues,
		ReturnValuesOnConditionCheckFailure: p.ReturnValuesOnConditionCheckFailure,
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return fmt.Errorf("%w: %w", ErrConflict, err)
	}
	return err
}
