package dynamostore

// Tests for behaviour that `make mutate` found unguarded in the item codec and the transaction's error
// classification. Unit level (a fake client): DynamoDB cannot be made to answer these shapes on demand.

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/idempotent"
)

func mtRecord(status idempotent.Status) idempotent.Record {
	at := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	r := idempotent.Record{
		ID: "id-1", Status: status, Fingerprint: "fp", Owner: "owner-1",
		LeaseEnd: at.Add(time.Minute), ExpiresAt: at.Add(24 * time.Hour),
	}
	if status == idempotent.StatusCompleted {
		r.LeaseEnd, r.Response = time.Time{}, []byte(`{"ok":true}`)
	}
	return r
}

func TestDecodeRequiredNumbers(t *testing.T) {
	s := New(fakeAPI{t: t}, "tbl")
	o := s.Options()
	tests := []struct {
		name   string
		status idempotent.Status
		edit   func(map[string]types.AttributeValue)
		err    string
	}{
		{"complete item decodes", idempotent.StatusCompleted, func(map[string]types.AttributeValue) {}, ""},
		{"in-progress item decodes", idempotent.StatusInProgress, func(map[string]types.AttributeValue) {}, ""},
		{"no expiration", idempotent.StatusCompleted, func(it map[string]types.AttributeValue) { delete(it, o.ExpirationAttr) },
			fmt.Sprintf("item has no %q attribute", o.ExpirationAttr)},
		{"expiration not a number", idempotent.StatusCompleted, func(it map[string]types.AttributeValue) { it[o.ExpirationAttr] = str("soon") },
			fmt.Sprintf("attribute %q is *types.AttributeValueMemberS, want N", o.ExpirationAttr)},
		{"expiration not an integer", idempotent.StatusCompleted, func(it map[string]types.AttributeValue) {
			it[o.ExpirationAttr] = &types.AttributeValueMemberN{Value: "1.5"}
		}, fmt.Sprintf("attribute %q:", o.ExpirationAttr)},
		{"in progress without its lease", idempotent.StatusInProgress, func(it map[string]types.AttributeValue) { delete(it, o.InProgressExpirationAttr) },
			fmt.Sprintf("item has no %q attribute", o.InProgressExpirationAttr)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := mtRecord(tc.status)
			it, err := s.item(rec, false)
			require.NoError(t, err)
			tc.edit(it)
			d, err := s.decode(it)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			assert.True(t, rec.ExpiresAt.Equal(d.rec.ExpiresAt), "expiry")
			if tc.status == idempotent.StatusInProgress {
				assert.True(t, rec.LeaseEnd.Equal(d.rec.LeaseEnd), "lease")
			} else {
				assert.True(t, d.rec.LeaseEnd.IsZero())
			}
		})
	}
}

func TestTransactionErrorShapes(t *testing.T) {
	ctx := context.Background()
	effect := types.TransactWriteItem{Put: &types.Put{TableName: aws.String("orders"), Item: map[string]types.AttributeValue{"id": str("x")}}}
	cancelled := func(codes ...string) error {
		var rs []types.CancellationReason
		for _, c := range codes {
			rs = append(rs, types.CancellationReason{Code: aws.String(c)})
		}
		return &types.TransactionCanceledException{Message: aws.String("Transaction cancelled"), CancellationReasons: rs}
	}
	tests := []struct {
		name     string
		err      error
		is       error
		contains string
	}{
		// Seen from DynamoDB-compatible servers: no reasons at all. Must not index reasons[0].
		{"cancelled without reasons", cancelled(), nil, "transaction cancelled ()"},
		// More reasons than items (a server that pads): the extra ones are not effects of ours.
		{"more reasons than items", cancelled("None", "None", "ConditionalCheckFailed"), nil, "transaction cancelled (None, None, ConditionalCheckFailed)"},
		// Fewer reasons than items: the missing ones are not read.
		{"fewer reasons than items", cancelled("None"), nil, "transaction cancelled (None)"},
		{"the one effect failed", cancelled("None", "ConditionalCheckFailed"), idempotent.ErrEffectFailed, "effect 0 (Put on table orders) failed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New(fakeAPI{t: t, tx: func(*dynamodb.TransactWriteItemsInput) (*dynamodb.TransactWriteItemsOutput, error) {
				return nil, tc.err
			}}, "tbl")
			var err error
			require.NotPanics(t, func() { err = s.Complete(ctx, mtRecord(idempotent.StatusCompleted), []idempotent.Effect{effect}) })
			require.Error(t, err)
			assert.ErrorIs(t, err, tc.err)
			assert.NotErrorIs(t, err, idempotent.ErrFenced)
			if tc.is != nil {
				assert.ErrorIs(t, err, tc.is)
			} else {
				assert.NotErrorIs(t, err, idempotent.ErrEffectFailed)
			}
			assert.Contains(t, err.Error(), tc.contains)
		})
	}
}

func TestMaxEffects(t *testing.T) {
	ctx := context.Background()
	effects := func(n int) []idempotent.Effect {
		out := make([]idempotent.Effect, n)
		for i := range out {
			out[i] = types.TransactWriteItem{Put: &types.Put{TableName: aws.String("orders"), Item: map[string]types.AttributeValue{"id": str(fmt.Sprint(i))}}}
		}
		return out
	}
	t.Run("MaxEffects fit: one transaction of 100 items", func(t *testing.T) {
		var items int
		s := New(fakeAPI{t: t, tx: func(in *dynamodb.TransactWriteItemsInput) (*dynamodb.TransactWriteItemsOutput, error) {
			items = len(in.TransactItems)
			return &dynamodb.TransactWriteItemsOutput{}, nil
		}}, "tbl")
		require.NoError(t, s.Complete(ctx, mtRecord(idempotent.StatusCompleted), effects(MaxEffects)))
		assert.Equal(t, 100, items)
	})
	t.Run("one more is refused before any call", func(t *testing.T) {
		s := New(fakeAPI{t: t}, "tbl") // a call would fail the test
		err := s.Complete(ctx, mtRecord(idempotent.StatusCompleted), effects(MaxEffects+1))
		require.ErrorIs(t, err, idempotent.ErrUnsupportedEffect)
		assert.Contains(t, err.Error(), "100 effects plus the completed record")
	})
}

func TestFenceReasons(t *testing.T) {
	ctx := context.Background()
	s0 := New(fakeAPI{t: t}, "tbl")
	o := s0.Options()
	effect := types.TransactWriteItem{Put: &types.Put{TableName: aws.String("orders"), Item: map[string]types.AttributeValue{"id": str("x")}}}
	old := func(status, owner string) map[string]types.AttributeValue {
		return map[string]types.AttributeValue{o.StatusAttr: str(status), o.OwnerAttr: str(owner)}
	}
	tests := []struct {
		name    string
		reasons []types.CancellationReason
		want    string
	}{
		{"one reason only: still the fence", []types.CancellationReason{{Code: aws.String("ConditionalCheckFailed")}}, "record absent"},
		{"taken over by another invocation", []types.CancellationReason{
			{Code: aws.String("ConditionalCheckFailed"), Item: old("INPROGRESS", "owner-2")}, {Code: aws.String("None")},
		}, "record held by another invocation"},
		{"completed by another", []types.CancellationReason{
			{Code: aws.String("ConditionalCheckFailed"), Item: old("COMPLETED", "owner-2")}, {Code: aws.String("None")},
		}, "record is COMPLETED"},
		{"ours, in progress, yet failed", []types.CancellationReason{
			{Code: aws.String("ConditionalCheckFailed"), Item: old("INPROGRESS", "owner-1")}, {Code: aws.String("None")},
		}, "condition failed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New(fakeAPI{t: t, tx: func(*dynamodb.TransactWriteItemsInput) (*dynamodb.TransactWriteItemsOutput, error) {
				return nil, &types.TransactionCanceledException{CancellationReasons: tc.reasons}
			}}, "tbl")
			err := s.Complete(ctx, mtRecord(idempotent.StatusCompleted), []idempotent.Effect{effect})
			require.ErrorIs(t, err, idempotent.ErrFenced)
			assert.Contains(t, err.Error(), ": "+tc.want+": ")
		})
	}
}
