package dynamostore

import (
	"context"
	"fmt"
	"testing"
	"time"

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

// TestClaimCompleteWritesCompleted: the engine passes the claim's record (INPROGRESS, with a lease); the merged
// write stores it as the completed record, without a lease, through PutItem and through a transaction alike.
func TestClaimCompleteWritesCompleted(t *testing.T) {
	s := New(nil, "tbl")
	want, err := s.item(completedRecord(), false)
	require.NoError(t, err)
	claim := record()
	claim.Response = completedRecord().Response
	require.Equal(t, idempotent.StatusInProgress, claim.Status)
	require.False(t, claim.LeaseEnd.IsZero())
	var got map[string]types.AttributeValue
	s.client = fakeAPI{t: t,
		put: func(in *dynamodb.PutItemInput) (*dynamodb.PutItemOutput, error) {
			got = in.Item
			return &dynamodb.PutItemOutput{}, nil
		},
		tx: func(in *dynamodb.TransactWriteItemsInput) (*dynamodb.TransactWriteItemsOutput, error) {
			got = in.TransactItems[0].Put.Item
			return &dynamodb.TransactWriteItemsOutput{}, nil
		},
	}
	for _, effects := range [][]idempotent.Effect{nil, {putEffect("orders")}} {
		got = nil
		existing, err := s.ClaimComplete(context.Background(), idempotent.Claim{Record: claim, Now: now}, effects)
		require.NoError(t, err)
		assert.Nil(t, existing)
		assert.Equal(t, want, got, "%d effects", len(effects))
	}
}

// TestClaimCompleteEffectLimit: MaxEffects effects and the record fill one transaction; one more is refused
// before anything is written.
func TestClaimCompleteEffectLimit(t *testing.T) {
	for _, tc := range []struct {
		n       int
		wantErr error
	}{{MaxEffects, nil}, {MaxEffects + 1, idempotent.ErrUnsupportedEffect}} {
		t.Run(fmt.Sprint(tc.n), func(t *testing.T) {
			calls := 0
			s := New(fakeAPI{t: t, tx: func(in *dynamodb.TransactWriteItemsInput) (*dynamodb.TransactWriteItemsOutput, error) {
				calls++
				assert.Len(t, in.TransactItems, 1+tc.n)
				return &dynamodb.TransactWriteItemsOutput{}, nil
			}}, "tbl")
			effects := make([]idempotent.Effect, tc.n)
			for i := range effects {
				effects[i] = putEffect("orders")
			}
			_, err := s.ClaimComplete(context.Background(), idempotent.Claim{Record: completedRecord(), Now: now}, effects)
			if tc.wantErr == nil {
				require.NoError(t, err)
				assert.Equal(t, 1, calls)
				return
			}
			require.ErrorIs(t, err, tc.wantErr)
			assert.Zero(t, calls, "nothing written")
		})
	}
}

// TestClaimCompleteOddReasons: cancellation reasons that do not match the items one to one (none at all, fewer,
// more) are read without indexing past either list, and a failed effect is named by its own index.
func TestClaimCompleteOddReasons(t *testing.T) {
	s := New(nil, "tbl")
	holder := completedRecord()
	holder.Owner = "owner-2"
	holderItem, err := s.item(holder, false)
	require.NoError(t, err)
	effects := []idempotent.Effect{putEffect("orders"), &types.TransactWriteItem{Update: &types.Update{TableName: aws.String("stock")}}}
	tests := []struct {
		name     string
		err      func() error
		wantHeld bool
		wantErr  error
		want     string // in the error
	}{
		{name: "NoReasons", err: func() error { return txCancelled() }, want: "transaction cancelled ()"},
		{name: "OnlyTheRecordsReason", wantHeld: true, err: func() error {
			err := txCancelled("ConditionalCheckFailed").(*types.TransactionCanceledException)
			err.CancellationReasons[0].Item = holderItem
			return err
		}},
		{name: "FewerReasonsThanItems", err: func() error { return txCancelled("None") }, want: "transaction cancelled (None)"},
		{name: "MoreReasonsThanItems", err: func() error { return txCancelled("None", "None", "None", "ConditionalCheckFailed") },
			want: "transaction cancelled (None, None, None, ConditionalCheckFailed)"},
		{name: "SecondEffectFailed", err: func() error { return txCancelled("None", "None", "ConditionalCheckFailed") },
			wantErr: idempotent.ErrEffectFailed, want: "effect 1 (Update on table stock) failed"},
		{name: "FirstEffectFailed", err: func() error { return txCancelled("None", "ConditionalCheckFailed", "None") },
			wantErr: idempotent.ErrEffectFailed, want: "effect 0 (Put on table orders) failed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s.client = fakeAPI{t: t, tx: func(in *dynamodb.TransactWriteItemsInput) (*dynamodb.TransactWriteItemsOutput, error) {
				require.Len(t, in.TransactItems, 3)
				return nil, tc.err()
			}}
			var existing *idempotent.Record
			var err error
			require.NotPanics(t, func() {
				existing, err = s.ClaimComplete(context.Background(), idempotent.Claim{Record: completedRecord(), Now: now}, effects)
			})
			if tc.wantHeld {
				require.NoError(t, err)
				require.NotNil(t, existing)
				assert.Equal(t, holder.Owner, existing.Owner)
				return
			}
			require.Error(t, err)
			assert.Nil(t, existing)
			assert.Contains(t, err.Error(), tc.want)
			if tc.wantErr != nil {
				assert.ErrorIs(t, err, tc.wantErr)
				return
			}
			for _, sentinel := range []error{idempotent.ErrRecordChanged, idempotent.ErrEffectFailed, idempotent.ErrPermanent} {
				assert.NotErrorIs(t, err, sentinel, "an unknown outcome is no decision")
			}
		})
	}
}

// TestClaimCompleteConflictRead: when DynamoDB leaves the old item out of a failed claim condition, the consistent
// read decides: a live record is the holder's answer; a record gone or expired by then is a changed record, which
// the engine claims again.
func TestClaimCompleteConflictRead(t *testing.T) {
	s := New(nil, "tbl")
	live := completedRecord()
	live.Owner = "owner-2"
	expired := live
	expired.ExpiresAt = now.Add(-time.Second)
	item := func(r idempotent.Record) map[string]types.AttributeValue {
		it, err := s.item(r, false)
		require.NoError(t, err)
		return it
	}
	for _, tc := range []struct {
		name     string
		get      map[string]types.AttributeValue
		wantHeld bool
	}{
		{name: "Live", get: item(live), wantHeld: true},
		{name: "Gone", get: nil},
		{name: "Expired", get: item(expired)},
	} {
		for _, effects := range [][]idempotent.Effect{nil, {putEffect("orders")}} {
			t.Run(fmt.Sprintf("%s/%d", tc.name, len(effects)), func(t *testing.T) {
				gets := 0
				s.client = fakeAPI{t: t,
					put: func(*dynamodb.PutItemInput) (*dynamodb.PutItemOutput, error) {
						return nil, &types.ConditionalCheckFailedException{Message: aws.String("The conditional request failed")}
					},
					tx: func(*dynamodb.TransactWriteItemsInput) (*dynamodb.TransactWriteItemsOutput, error) {
						return nil, txCancelled("ConditionalCheckFailed", "None")
					},
					get: func(*dynamodb.GetItemInput) (*dynamodb.GetItemOutput, error) {
						gets++
						return &dynamodb.GetItemOutput{Item: tc.get}, nil
					},
				}
				var existing *idempotent.Record
				var err error
				require.NotPanics(t, func() {
					existing, err = s.ClaimComplete(context.Background(), idempotent.Claim{Record: completedRecord(), Now: now}, effects)
				})
				assert.Equal(t, 1, gets)
				if tc.wantHeld {
					require.NoError(t, err)
					require.NotNil(t, existing)
					assert.Equal(t, live.Owner, existing.Owner)
					return
				}
				require.ErrorIs(t, err, idempotent.ErrRecordChanged)
				assert.Nil(t, existing)
			})
		}
	}
}

// TestClaimCompleteHolder: what the old item returned with a failed claim condition decides. Only a completed
// record of this very write (its owner) is success; a record of another owner, or one still in progress, is the
// holder's answer; a holder too large to replay is an error for the same request only.
func TestClaimCompleteHolder(t *testing.T) {
	s := New(nil, "tbl")
	mine := completedRecord()
	item := func(r idempotent.Record, tooLarge bool) map[string]types.AttributeValue {
		it, err := s.item(r, tooLarge)
		require.NoError(t, err)
		return it
	}
	ownLater := mine // this write, applied by an earlier attempt, with another expiry: not the same item
	ownLater.ExpiresAt = mine.ExpiresAt.Add(time.Second)
	ownInProgress := record() // this owner's claim, still in progress
	holder := completedRecord()
	holder.Owner = "owner-2"
	otherRequest := holder
	otherRequest.Fingerprint = "fp-other"
	tests := []struct {
		name       string
		old        map[string]types.AttributeValue
		wantHolder *idempotent.Record
		wantErr    error
	}{
		{name: "OwnWriteApplied", old: item(ownLater, false)},
		{name: "OwnClaimInProgress", old: item(ownInProgress, false), wantHolder: &ownInProgress},
		{name: "OtherOwner", old: item(holder, false), wantHolder: &holder},
		{name: "TooLargeSameRequest", old: item(holder, true), wantErr: ErrResponseTooLarge},
		{name: "TooLargeOtherRequest", old: item(otherRequest, true), wantHolder: &otherRequest},
	}
	for _, tc := range tests {
		for _, effects := range [][]idempotent.Effect{nil, {putEffect("orders")}} {
			t.Run(fmt.Sprintf("%s/%d", tc.name, len(effects)), func(t *testing.T) {
				s.client = fakeAPI{t: t,
					put: func(*dynamodb.PutItemInput) (*dynamodb.PutItemOutput, error) {
						return nil, &types.ConditionalCheckFailedException{Message: aws.String("The conditional request failed"), Item: tc.old}
					},
					tx: func(*dynamodb.TransactWriteItemsInput) (*dynamodb.TransactWriteItemsOutput, error) {
						err := txCancelled("ConditionalCheckFailed", "None").(*types.TransactionCanceledException)
						err.CancellationReasons[0].Item = tc.old
						return nil, err
					},
				}
				existing, err := s.ClaimComplete(context.Background(), idempotent.Claim{Record: mine, Now: now}, effects)
				if tc.wantErr != nil {
					require.ErrorIs(t, err, tc.wantErr)
					assert.Nil(t, existing)
					return
				}
				require.NoError(t, err)
				if tc.wantHolder == nil {
					assert.Nil(t, existing, "success")
					return
				}
				require.NotNil(t, existing)
				assert.Equal(t, tc.wantHolder.Owner, existing.Owner)
				assert.Equal(t, tc.wantHolder.Status, existing.Status)
				assert.Equal(t, tc.wantHolder.Fingerprint, existing.Fingerprint)
			})
		}
	}
}

// TestClaimCompleteConflictFailures: when the holder cannot be known (its item does not decode, or the read
// fails), the merged write reports that failure: it is neither success nor a changed record to claim again.
func TestClaimCompleteConflictFailures(t *testing.T) {
	s := New(nil, "tbl")
	bogus, err := s.item(completedRecord(), false)
	require.NoError(t, err)
	bogus["status"] = &types.AttributeValueMemberS{Value: "BOGUS"}
	throttled := &smithy.GenericAPIError{Code: "ThrottlingException", Message: "slow down"}
	for _, tc := range []struct {
		name    string
		old     map[string]types.AttributeValue // returned with the failed condition
		readErr error                           // of the consistent read, when old is nil
		want    string
	}{
		{name: "Undecodable", old: bogus, want: "BOGUS"},
		// An item DynamoDB returned is decoded, however small, never replaced by a read.
		{name: "OneAttribute", old: map[string]types.AttributeValue{"id": bogus["id"]}, want: "status"},
		{name: "ReadFails", readErr: throttled, want: "slow down"},
	} {
		for _, effects := range [][]idempotent.Effect{nil, {putEffect("orders")}} {
			t.Run(fmt.Sprintf("%s/%d", tc.name, len(effects)), func(t *testing.T) {
				s.client = fakeAPI{t: t,
					put: func(*dynamodb.PutItemInput) (*dynamodb.PutItemOutput, error) {
						return nil, &types.ConditionalCheckFailedException{Message: aws.String("The conditional request failed"), Item: tc.old}
					},
					tx: func(*dynamodb.TransactWriteItemsInput) (*dynamodb.TransactWriteItemsOutput, error) {
						err := txCancelled("ConditionalCheckFailed", "None").(*types.TransactionCanceledException)
						err.CancellationReasons[0].Item = tc.old
						return nil, err
					},
					get: func(*dynamodb.GetItemInput) (*dynamodb.GetItemOutput, error) { return nil, tc.readErr },
				}
				var existing *idempotent.Record
				var err error
				require.NotPanics(t, func() {
					existing, err = s.ClaimComplete(context.Background(), idempotent.Claim{Record: completedRecord(), Now: now}, effects)
				})
				require.Error(t, err)
				assert.Nil(t, existing)
				assert.ErrorContains(t, err, tc.want)
				if tc.readErr != nil {
					assert.ErrorIs(t, err, tc.readErr)
				}
				assert.NotErrorIs(t, err, idempotent.ErrRecordChanged)
			})
		}
	}
}
