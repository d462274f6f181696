package dynamostore

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/idempotent"
)

// TestClaimCompleteCancellation: how ClaimComplete reads each way DynamoDB cancels its transaction.
func TestClaimCompleteCancellation(t *testing.T) {
	s := New(nil, "tbl")
	holder := completedRecord()
	holder.Owner = "owner-2"
	holderItem, err := s.item(holder, false)
	require.NoError(t, err)
	mine := completedRecord()
	mine.Response = []byte(`{"mine":true}`)
	withItem := func(item map[string]types.AttributeValue, codes ...string) error {
		err := txCancelled(codes...).(*types.TransactionCanceledException)
		err.CancellationReasons[0].Item = item
		return err
	}
	tests := []struct {
		name     string
		err      error
		get      map[string]types.AttributeValue // the consistent read's answer; nil: no read expected
		wantErr  error
		wantHeld bool
	}{
		{name: "RecordConditionWithItem", err: withItem(holderItem, "ConditionalCheckFailed", "None"), wantHeld: true},
		{name: "RecordConditionWinsOverEffect", err: withItem(holderItem, "ConditionalCheckFailed", "ConditionalCheckFailed"), wantHeld: true},
		{name: "RecordConditionWithoutItemReads", err: txCancelled("ConditionalCheckFailed", "None"), get: holderItem, wantHeld: true},
		{name: "TransactionConflict", err: txCancelled("TransactionConflict", "None"), wantErr: idempotent.ErrRecordChanged},
		{name: "ConflictOnTheEffect", err: txCancelled("None", "TransactionConflict"), wantErr: idempotent.ErrRecordChanged},
		{name: "EffectCondition", err: txCancelled("None", "ConditionalCheckFailed"), wantErr: idempotent.ErrEffectFailed},
		{name: "Throttled", err: txCancelled("None", "ThrottlingError")},
		{name: "Validation", err: &smithy.GenericAPIError{Code: "ValidationException", Message: "bad"}, wantErr: idempotent.ErrPermanent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			gets := 0
			api := fakeAPI{t: t, tx: func(in *dynamodb.TransactWriteItemsInput) (*dynamodb.TransactWriteItemsOutput, error) {
				require.Len(t, in.TransactItems, 2)
				put := in.TransactItems[0].Put
				require.NotNil(t, put)
				assert.Equal(t, types.ReturnValuesOnConditionCheckFailureAllOld, put.ReturnValuesOnConditionCheckFailure)
				assert.Equal(t, "COMPLETED", put.Item["status"].(*types.AttributeValueMemberS).Value)
				assert.NotEmpty(t, aws.ToString(in.ClientRequestToken))
				return nil, tc.err
			}}
			if tc.get != nil {
				api.get = func(in *dynamodb.GetItemInput) (*dynamodb.GetItemOutput, error) {
					gets++
					assert.True(t, aws.ToBool(in.ConsistentRead))
					return &dynamodb.GetItemOutput{Item: tc.get}, nil
				}
			}
			s.client = api
			existing, err := s.ClaimComplete(context.Background(), idempotent.Claim{Record: mine, Now: now, Takeover: true},
				[]idempotent.Effect{putEffect("orders")})
			if tc.get != nil {
				assert.Equal(t, 1, gets)
			}
			switch {
			case tc.wantHeld:
				require.NoError(t, err)
				require.NotNil(t, existing)
				assert.Equal(t, holder.Owner, existing.Owner)
				assert.Equal(t, string(holder.Response), string(existing.Response))
			case tc.wantErr != nil:
				require.ErrorIs(t, err, tc.wantErr)
				assert.Nil(t, existing)
			default:
				require.Error(t, err)
				for _, sentinel := range []error{idempotent.ErrRecordChanged, idempotent.ErrEffectFailed, idempotent.ErrPermanent} {
					assert.NotErrorIs(t, err, sentinel, "an unknown outcome is no decision")
				}
			}
			if tc.wantErr == idempotent.ErrEffectFailed {
				var tce *types.TransactionCanceledException
				assert.ErrorAs(t, err, &tce, "the reasons stay reachable")
			}
		})
	}
}

// TestClaimCompleteOwnWrite: a merged write that meets exactly the item it writes (an SDK retry of a committed
// attempt) succeeds, with and without effects.
func TestClaimCompleteOwnWrite(t *testing.T) {
	s := New(nil, "tbl")
	mine := completedRecord()
	item, err := s.item(mine, false)
	require.NoError(t, err)
	s.client = fakeAPI{t: t,
		put: func(*dynamodb.PutItemInput) (*dynamodb.PutItemOutput, error) {
			return nil, &types.ConditionalCheckFailedException{Item: item}
		},
		tx: func(*dynamodb.TransactWriteItemsInput) (*dynamodb.TransactWriteItemsOutput, error) {
			err := txCancelled("ConditionalCheckFailed", "ConditionalCheckFailed").(*types.TransactionCanceledException)
			err.CancellationReasons[0].Item = item
			return nil, err
		},
	}
	for _, effects := range [][]idempotent.Effect{nil, {putEffect("orders")}} {
		existing, err := s.ClaimComplete(context.Background(), idempotent.Claim{Record: mine, Now: now, Takeover: true}, effects)
		require.NoError(t, err)
		assert.Nil(t, existing, "%d effects", len(effects))
	}
}
