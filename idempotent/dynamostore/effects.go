package dynamostore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/idemkit/idemkit/idempotent"
)

// MaxEffects is the largest number of effects one completion can carry: DynamoDB allows 100 items per
// transaction and the completed record is one of them.
const MaxEffects = 99

// Put asks the engine to commit put in the same transaction as the completed record (see idempotent.AddEffect).
// It returns false outside an idempotent execution; the caller must then write on its own.
func Put(ctx context.Context, put *types.Put) bool {
	return idempotent.AddEffect(ctx, types.TransactWriteItem{Put: put})
}

// Update is Put for an UpdateItem-like write.
func Update(ctx context.Context, update *types.Update) bool {
	return idempotent.AddEffect(ctx, types.TransactWriteItem{Update: update})
}

// Delete is Put for a DeleteItem-like write.
func Delete(ctx context.Context, del *types.Delete) bool {
	return idempotent.AddEffect(ctx, types.TransactWriteItem{Delete: del})
}

// ConditionCheck adds a condition on another item that must hold for the completion and the other effects to
// commit.
func ConditionCheck(ctx context.Context, check *types.ConditionCheck) bool {
	return idempotent.AddEffect(ctx, types.TransactWriteItem{ConditionCheck: check})
}

// transactItem converts an effect. Accepted: types.TransactWriteItem and a non-nil *types.TransactWriteItem with
// exactly one of Put, Update, Delete and ConditionCheck set.
func transactItem(e idempotent.Effect) (types.TransactWriteItem, error) {
	var it types.TransactWriteItem
	switch v := e.(type) {
	case types.TransactWriteItem:
		it = v
	case *types.TransactWriteItem:
		if v == nil {
			return it, fmt.Errorf("nil *types.TransactWriteItem: %w", idempotent.ErrUnsupportedEffect)
		}
		it = *v
	default:
		return it, fmt.Errorf("%w: %T (want types.TransactWriteItem)", idempotent.ErrUnsupportedEffect, e)
	}
	set := 0
	for _, p := range []bool{it.Put != nil, it.Update != nil, it.Delete != nil, it.ConditionCheck != nil} {
		if p {
			set++
		}
	}
	if set != 1 {
		return it, fmt.Errorf("%w: a TransactWriteItem must set exactly one of Put, Update, Delete and ConditionCheck (it sets %d)",
			idempotent.ErrUnsupportedEffect, set)
	}
	return it, nil
}

// completeTx writes the completed item and the effects in one TransactWriteItems.
func (s *Store) completeTx(ctx context.Context, rec idempotent.Record, it map[string]types.AttributeValue, effects []idempotent.Effect) error {
	if len(effects) > MaxEffects {
		return fmt.Errorf("dynamostore: complete %s: %d effects plus the completed record exceed DynamoDB's 100 items per transaction: %w",
			rec.ID, len(effects), idempotent.ErrUnsupportedEffect)
	}
	items := make([]types.TransactWriteItem, 0, 1+len(effects))
	items = append(items, types.TransactWriteItem{Put: &types.Put{
		TableName:                 aws.String(s.table),
		Item:                      it,
		ConditionExpression:       aws.String(s.fenceCond),
		ExpressionAttributeNames:  s.fenceNames,
		ExpressionAttributeValues: s.fenceValues(rec.Owner),
		// The old item tells a fenced completion from one of ours that committed earlier.
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}})
	for i, e := range effects {
		ti, err := transactItem(e)
		if err != nil {
			return fmt.Errorf("dynamostore: complete %s: effect %d: %w", rec.ID, i, err)
		}
		items = append(items, ti)
	}
	_, err := s.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
		TransactItems:      items,
		ClientRequestToken: aws.String(requestToken(s.table, rec)),
	})
	if err == nil {
		return nil
	}
	return s.txError(rec, items, err)
}

// requestToken derives the transaction's ClientRequestToken (at most 36 characters) from the table, the record ID
// and the claim's owner token, which is random per claim: an SDK or engine retry of the same completion sends the
// same token, and DynamoDB answers a retry of a committed transaction with success instead of re-evaluating its
// conditions. DynamoDB scopes tokens to the account and region, hence the table in the hash.
func requestToken(table string, rec idempotent.Record) string {
	sum := sha256.Sum256([]byte("idemkit/dynamostore/complete\x00" + table + "\x00" + rec.ID + "\x00" + rec.Owner))
	return hex.EncodeToString(sum[:])[:36]
}

// txError classifies a failed completion transaction. Item 0 is the completed record, effect i is item i+1.
func (s *Store) txError(rec idempotent.Record, items []types.TransactWriteItem, err error) error {
	id := rec.ID
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) {
		reasons := tce.CancellationReasons
		if len(reasons) > 0 && aws.ToString(reasons[0].Code) == "ConditionalCheckFailed" {
			if sameItem(reasons[0].Item, items[0].Put.Item) {
				// Our completed item can only have been written by this very transaction, effects included: an
				// earlier attempt committed and only its answer was lost.
				return nil
			}
			return fmt.Errorf("dynamostore: complete %s: %s: %w (%w)", id, s.fenceReason(reasons[0].Item, rec.Owner), idempotent.ErrFenced, err)
		}
		for i := 1; i < len(reasons) && i < len(items); i++ {
			if code := aws.ToString(reasons[i].Code); code == "ConditionalCheckFailed" {
				return fmt.Errorf("dynamostore: complete %s: effect %d (%s on table %s) failed: %s: %s: %w (%w)",
					id, i-1, kind(items[i]), table(items[i]), code, aws.ToString(reasons[i].Message), idempotent.ErrEffectFailed, err)
			}
		}
		return fmt.Errorf("dynamostore: complete %s: transaction cancelled (%s): %w", id, reasonCodes(reasons), err)
	}
	if invalid(err) {
		// DynamoDB refused the request for good: malformed, almost always because of an effect (a bad expression,
		// two operations on one item), or a table or permission missing. Retrying cannot help.
		return fmt.Errorf("dynamostore: complete %s: DynamoDB rejected the transaction (check the effects, tables and permissions): %w (%w)",
			id, idempotent.ErrPermanent, err)
	}
	return fmt.Errorf("dynamostore: complete %s: %w", id, err)
}

func kind(it types.TransactWriteItem) string {
	switch {
	case it.Put != nil:
		return "Put"
	case it.Update != nil:
		return "Update"
	case it.Delete != nil:
		return "Delete"
	default:
		return "ConditionCheck"
	}
}

func table(it types.TransactWriteItem) string {
	switch {
	case it.Put != nil:
		return aws.ToString(it.Put.TableName)
	case it.Update != nil:
		return aws.ToString(it.Update.TableName)
	case it.Delete != nil:
		return aws.ToString(it.Delete.TableName)
	case it.ConditionCheck != nil:
		return aws.ToString(it.ConditionCheck.TableName)
	}
	return ""
}

func reasonCodes(rs []types.CancellationReason) string {
	out := ""
	for i, r := range rs {
		if i > 0 {
			out += ", "
		}
		out += aws.ToString(r.Code)
	}
	return out
}
