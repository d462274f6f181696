package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/idemkit/idemkit/idempotent"
)

var _ idempotent.ClaimCompleter = (*Store)(nil)

// ClaimComplete implements idempotent.ClaimCompleter: the COMPLETED record written under the claim condition (the
// key is absent, expired, or with takeover INPROGRESS with an ended lease), in one call. Without effects it is one
// conditional PutItem; with effects one TransactWriteItems holding that Put first and the effects after it. When
// the condition fails, the live record comes back in the same answer (ReturnValuesOnConditionCheckFailure ALL_OLD,
// in the cancellation reason of a transaction); only if DynamoDB leaves it out is it read with a consistent GetItem.
//
// A transaction cancelled because another transaction was writing the record at that moment
// (TransactionConflict) returns idempotent.ErrRecordChanged: nothing was written, and the engine tries again after
// a pause. A transaction whose completed record could commit but one of whose effects failed its own condition
// returns idempotent.ErrEffectFailed, wrapping the *types.TransactionCanceledException so the caller can read the
// reasons.
func (s *Store) ClaimComplete(ctx context.Context, c idempotent.Claim, effects []idempotent.Effect) (*idempotent.Record, error) {
	rec := c.Record
	rec.Status = idempotent.StatusCompleted
	rec.LeaseEnd = time.Time{}
	it, err := s.completedItem(ctx, rec)
	if err != nil {
		return nil, err
	}
	cond, names, values := s.claimInput(c)
	put := types.Put{
		TableName:                           aws.String(s.table),
		Item:                                it,
		ConditionExpression:                 cond,
		ExpressionAttributeNames:            names,
		ExpressionAttributeValues:           values,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
	if len(effects) == 0 {
		_, err = s.client.PutItem(ctx, &dynamodb.PutItemInput{
			TableName:                           put.TableName,
			Item:                                put.Item,
			ConditionExpression:                 put.ConditionExpression,
			ExpressionAttributeNames:            put.ExpressionAttributeNames,
			ExpressionAttributeValues:           put.ExpressionAttributeValues,
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		})
		if err == nil {
			return nil, nil
		}
		var ccf *types.ConditionalCheckFailedException
		if errors.As(err, &ccf) {
			return s.claimConflict(ctx, c, rec, it, ccf.Item)
		}
		if invalid(err) {
			return nil, fmt.Errorf("dynamostore: claim-complete %s: %w (%w)", rec.ID, idempotent.ErrPermanent, err)
		}
		return nil, fmt.Errorf("dynamostore: claim-complete %s: %w", rec.ID, err)
	}

	if len(effects) > MaxEffects {
		return nil, fmt.Errorf("dynamostore: claim-complete %s: %d effects plus the completed record exceed DynamoDB's 100 items per transaction: %w",
			rec.ID, len(effects), idempotent.ErrUnsupportedEffect)
	}
	items := make([]types.TransactWriteItem, 0, 1+len(effects))
	items = append(items, types.TransactWriteItem{Put: &put})
	for i, e := range effects {
		ti, err := transactItem(e)
		if err != nil {
			return nil, fmt.Errorf("dynamostore: claim-complete %s: effect %d: %w", rec.ID, i, err)
		}
		items = append(items, ti)
	}
	_, err = s.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
		TransactItems: items,
		// The owner is new per write, so an SDK retry of a transaction that committed (its answer lost) succeeds
		// without writing again, and no other write shares the token.
		ClientRequestToken: aws.String(requestToken(s.table, rec)),
	})
	if err == nil {
		return nil, nil
	}
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) {
		if invalid(err) {
			return nil, fmt.Errorf("dynamostore: claim-complete %s: DynamoDB rejected the transaction (check the effects): %w (%w)",
				rec.ID, idempotent.ErrPermanent, err)
		}
		return nil, fmt.Errorf("dynamostore: claim-complete %s: %w", rec.ID, err)
	}
	reasons := tce.CancellationReasons
	if len(reasons) > 0 && aws.ToString(reasons[0].Code) == "ConditionalCheckFailed" {
		// The key is held: whatever the effects' own conditions said, the answer is the holder's.
		return s.claimConflict(ctx, c, rec, it, reasons[0].Item)
	}
	for _, r := range reasons {
		if aws.ToString(r.Code) == "TransactionConflict" {
			return nil, fmt.Errorf("dynamostore: claim-complete %s: a concurrent transaction on the same items: %w (%w)",
				rec.ID, idempotent.ErrRecordChanged, err)
		}
	}
	for i := 1; i < len(reasons) && i < len(items); i++ {
		if code := aws.ToString(reasons[i].Code); code == "ConditionalCheckFailed" {
			return nil, fmt.Errorf("dynamostore: claim-complete %s: effect %d (%s on table %s) failed: %s: %w (%w)",
				rec.ID, i-1, kind(items[i]), table(items[i]), code, idempotent.ErrEffectFailed, err)
		}
	}
	return nil, fmt.Errorf("dynamostore: claim-complete %s: transaction cancelled (%s): %w", rec.ID, reasonCodes(reasons), err)
}

// claimConflict decides what a failed claim condition of ClaimComplete met, from the old item DynamoDB returned
// (or a consistent read when it returned none).
func (s *Store) claimConflict(ctx context.Context, c idempotent.Claim, rec idempotent.Record, it, oldItem map[string]types.AttributeValue) (*idempotent.Record, error) {
	if sameItem(oldItem, it) {
		// Exactly what this call writes, owner token included: an earlier attempt of it (an SDK retry) committed.
		return nil, nil
	}
	var old *decoded
	var err error
	if len(oldItem) > 0 {
		if old, err = s.decode(oldItem); err != nil {
			return nil, fmt.Errorf("dynamostore: claim-complete %s: %w", rec.ID, err)
		}
	} else {
		if old, err = s.get(ctx, rec.ID); err != nil {
			return nil, fmt.Errorf("dynamostore: claim-complete %s: %w", rec.ID, err)
		}
		if old == nil || old.rec.Expired(c.Now) {
			return nil, fmt.Errorf("dynamostore: claim-complete %s: conflicting record gone: %w", rec.ID, idempotent.ErrRecordChanged)
		}
	}
	if old.rec.Status == idempotent.StatusCompleted && old.rec.Owner == rec.Owner {
		return nil, nil // this very write, applied by an earlier attempt (see idempotent.ClaimCompleter)
	}
	if old.tooLarge && old.rec.Fingerprint == rec.Fingerprint {
		return nil, fmt.Errorf("dynamostore: claim-complete %s: %w", rec.ID, ErrResponseTooLarge)
	}
	return &old.rec, nil
}
