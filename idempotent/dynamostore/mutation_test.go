package dynamostore

// Tests for behaviour that `make mutate` found unguarded in the item codec and the transaction's error
// classification. Unit level (a fake client): DynamoDB cannot be made to answer these shapes on demand.

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
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

func TestItemSizeCountsEachType(t *testing.T) {
	it := map[string]types.AttributeValue{
		"ab": str("xyz"),                                              // 2 + 3
		"c":  &types.AttributeValueMemberN{Value: "12"},               // 1 + 2 + 1
		"d":  &types.AttributeValueMemberB{Value: []byte{1, 2, 3, 4}}, // 1 + 4
		"e":  &types.AttributeValueMemberBOOL{Value: true},            // 1 + 64: a type this package never writes, counted high
	}
	assert.Equal(t, 79, itemSize(it))
	assert.Equal(t, 0, itemSize(nil))
}

// The size limit in DynamoDB's own figures: 400 KiB, of which the store keeps 1 KiB as margin.
func TestItemSizeLimitInBytes(t *testing.T) {
	const limit = 400*1024 - 1024
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		extra    int // bytes beyond the limit
		tooLarge bool
	}{
		{"exactly at the limit is stored", 0, false},
		{"one byte over is replaced by the marker", 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var put map[string]types.AttributeValue
			s := New(fakeAPI{t: t, put: func(in *dynamodb.PutItemInput) (*dynamodb.PutItemOutput, error) {
				put = in.Item
				return &dynamodb.PutItemOutput{}, nil
			}}, "tbl", func(o *Options) { o.CompressThreshold = -1 })
			rec := mtRecord(idempotent.StatusCompleted)
			rec.Response = []byte{0xff} // not UTF-8: stored as B, one byte per byte
			base, err := s.item(rec, false)
			require.NoError(t, err)
			rec.Response = make([]byte, 1+limit-itemSize(base)+tc.extra)
			_, _ = rand.Read(rec.Response)
			rec.Response[0] = 0xff
			require.NoError(t, s.Complete(ctx, rec, nil))
			require.NotNil(t, put)
			if tc.tooLarge {
				assert.Equal(t, str(EncodingTooLarge), put[s.Options().DataEncodingAttr])
				assert.NotContains(t, put, s.Options().DataAttr)
			} else {
				assert.Equal(t, limit, itemSize(put))
				assert.Contains(t, put, s.Options().DataAttr)
			}
		})
	}
}

func TestCompressThresholdBoundary(t *testing.T) {
	resp := []byte(strings.Repeat("compressible ", 40)) // 520 bytes
	for _, tc := range []struct {
		name      string
		threshold int
		gzip      bool
	}{
		{"threshold equal to the size compresses", len(resp), true},
		{"threshold one above does not", len(resp) + 1, false},
		{"threshold 1 compresses", 1, true},
		{"negative disables", -1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(fakeAPI{t: t}, "tbl", func(o *Options) { o.CompressThreshold = tc.threshold })
			data, enc, err := s.encodeData(resp)
			require.NoError(t, err)
			if tc.gzip {
				assert.Equal(t, EncodingGzip, enc)
				b, ok := data.(*types.AttributeValueMemberB)
				require.True(t, ok)
				assert.Less(t, len(b.Value), len(resp))
			} else {
				assert.Empty(t, enc)
				assert.Equal(t, str(string(resp)), data)
			}
		})
	}
	t.Run("an empty response with threshold 1 is stored as is", func(t *testing.T) {
		s := New(fakeAPI{t: t}, "tbl", func(o *Options) { o.CompressThreshold = 1 })
		data, enc, err := s.encodeData([]byte{})
		require.NoError(t, err)
		assert.Empty(t, enc)
		assert.Equal(t, str(""), data)
	})
}

func TestDecodeMalformedItems(t *testing.T) {
	s := New(fakeAPI{t: t}, "tbl", func(o *Options) { o.KeyPrefix = "p#" })
	o := s.Options()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte(strings.Repeat("a response ", 100)))
	require.NoError(t, zw.Close())
	truncated := gz.Bytes()[:gz.Len()-6]
	tests := []struct {
		name string
		edit func(map[string]types.AttributeValue)
		err  string // empty: decodes
	}{
		{"no key", func(it map[string]types.AttributeValue) { delete(it, o.IDAttr) }, fmt.Sprintf("item has no %q attribute", o.IDAttr)},
		{"key not a string", func(it map[string]types.AttributeValue) { it[o.IDAttr] = &types.AttributeValueMemberN{Value: "1"} }, "want S"},
		{"key without the prefix", func(it map[string]types.AttributeValue) { it[o.IDAttr] = str("id-1") }, `lacks the key prefix "p#"`},
		{"no status", func(it map[string]types.AttributeValue) { delete(it, o.StatusAttr) }, fmt.Sprintf("item has no %q attribute", o.StatusAttr)},
		{"unknown status", func(it map[string]types.AttributeValue) { it[o.StatusAttr] = str("WEIRD") }, "item id-1:"},
		{"no fingerprint: optional", func(it map[string]types.AttributeValue) { delete(it, o.ValidationAttr) }, ""},
		{"fingerprint not a string", func(it map[string]types.AttributeValue) {
			it[o.ValidationAttr] = &types.AttributeValueMemberN{Value: "1"}
		}, "want S"},
		{"no owner: optional", func(it map[string]types.AttributeValue) { delete(it, o.OwnerAttr) }, ""},
		{"owner not a string", func(it map[string]types.AttributeValue) { it[o.OwnerAttr] = &types.AttributeValueMemberN{Value: "1"} }, "want S"},
		{"encoding not a string", func(it map[string]types.AttributeValue) {
			it[o.DataEncodingAttr] = &types.AttributeValueMemberN{Value: "1"}
		}, "want S"},
		{"gzip that is not gzip", func(it map[string]types.AttributeValue) {
			it[o.DataEncodingAttr] = str(EncodingGzip)
			it[o.DataAttr] = &types.AttributeValueMemberB{Value: []byte("plain")}
		}, "decompress response"},
		{"truncated gzip", func(it map[string]types.AttributeValue) {
			it[o.DataEncodingAttr] = str(EncodingGzip)
			it[o.DataAttr] = &types.AttributeValueMemberB{Value: truncated}
		}, "decompress response"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			it, err := s.item(mtRecord(idempotent.StatusCompleted), false)
			require.NoError(t, err)
			tc.edit(it)
			d, err := s.decode(it)
			if tc.err == "" {
				require.NoError(t, err)
				assert.Equal(t, "id-1", d.rec.ID)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.err)
		})
	}
	t.Run("an empty response decodes as empty, not nil", func(t *testing.T) {
		rec := mtRecord(idempotent.StatusCompleted)
		rec.Response = nil
		it, err := s.item(rec, false)
		require.NoError(t, err)
		it[s.Options().DataAttr] = &types.AttributeValueMemberB{Value: nil}
		d, err := s.decode(it)
		require.NoError(t, err)
		assert.NotNil(t, d.rec.Response)
		assert.Empty(t, d.rec.Response)
	})
}

func TestEffectFailureNamesItsTable(t *testing.T) {
	ctx := context.Background()
	effects := []idempotent.Effect{
		types.TransactWriteItem{Delete: &types.Delete{TableName: aws.String("carts")}},
		types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{TableName: aws.String("stock")}},
	}
	for i, want := range []string{"effect 0 (Delete on table carts) failed", "effect 1 (ConditionCheck on table stock) failed"} {
		t.Run(want, func(t *testing.T) {
			codes := []string{"None", "None", "None"}
			codes[i+1] = "ConditionalCheckFailed"
			var rs []types.CancellationReason
			for _, c := range codes {
				rs = append(rs, types.CancellationReason{Code: aws.String(c)})
			}
			s := New(fakeAPI{t: t, tx: func(*dynamodb.TransactWriteItemsInput) (*dynamodb.TransactWriteItemsOutput, error) {
				return nil, &types.TransactionCanceledException{CancellationReasons: rs}
			}}, "tbl")
			err := s.Complete(ctx, mtRecord(idempotent.StatusCompleted), effects)
			require.ErrorIs(t, err, idempotent.ErrEffectFailed)
			assert.Contains(t, err.Error(), want)
		})
	}
}

func TestOptionsDefaultsAndOverrides(t *testing.T) {
	got := New(fakeAPI{t: t}, "tbl").Options()
	assert.Equal(t, "id", got.IDAttr)
	assert.Equal(t, "status", got.StatusAttr)
	assert.Equal(t, "expiration", got.ExpirationAttr)
	assert.Equal(t, "in_progress_expiration", got.InProgressExpirationAttr)
	assert.Equal(t, "validation", got.ValidationAttr)
	assert.Equal(t, "data", got.DataAttr)
	assert.Equal(t, "owner", got.OwnerAttr)
	assert.Equal(t, "data_encoding", got.DataEncodingAttr)
	assert.Equal(t, "idempotency", got.StaticPartitionKey)
	assert.Equal(t, 4096, got.CompressThreshold)
	assert.NotNil(t, got.Logger)
	assert.Empty(t, got.SortKeyAttr)
	assert.Empty(t, got.KeyPrefix)

	set := New(fakeAPI{t: t}, "tbl", func(o *Options) {
		o.IDAttr, o.SortKeyAttr, o.StatusAttr, o.ExpirationAttr = "pk", "sk", "st", "exp"
		o.InProgressExpirationAttr, o.ValidationAttr, o.DataAttr, o.OwnerAttr = "lease", "fp", "body", "holder"
		o.DataEncodingAttr, o.StaticPartitionKey, o.CompressThreshold = "enc", "static", -1
	}).Options()
	assert.Equal(t, []string{"pk", "sk", "st", "exp", "lease", "fp", "body", "holder", "enc", "static"},
		[]string{set.IDAttr, set.SortKeyAttr, set.StatusAttr, set.ExpirationAttr, set.InProgressExpirationAttr,
			set.ValidationAttr, set.DataAttr, set.OwnerAttr, set.DataEncodingAttr, set.StaticPartitionKey})
	assert.Equal(t, -1, set.CompressThreshold)
}

// The store writes the status its call implies, whatever the record passed in says.
func TestStatusWrittenByEachCall(t *testing.T) {
	ctx := context.Background()
	var put map[string]types.AttributeValue
	s := New(fakeAPI{t: t, put: func(in *dynamodb.PutItemInput) (*dynamodb.PutItemOutput, error) {
		put = in.Item
		return &dynamodb.PutItemOutput{}, nil
	}}, "tbl")
	o := s.Options()

	rec := mtRecord(idempotent.StatusCompleted) // a caller's mistake: Claim still writes INPROGRESS, no response
	existing, err := s.Claim(ctx, idempotent.Claim{Record: rec, Now: rec.LeaseEnd.Add(-time.Minute)})
	require.NoError(t, err)
	assert.Nil(t, existing)
	assert.Equal(t, str("INPROGRESS"), put[o.StatusAttr])
	assert.NotContains(t, put, o.DataAttr)
	assert.Contains(t, put, o.InProgressExpirationAttr)

	rec = mtRecord(idempotent.StatusInProgress) // Complete writes COMPLETED without a lease
	rec.Response = []byte(`{"ok":true}`)
	require.NoError(t, s.Complete(ctx, rec, nil))
	assert.Equal(t, str("COMPLETED"), put[o.StatusAttr])
	assert.NotContains(t, put, o.InProgressExpirationAttr)
	assert.Equal(t, str(`{"ok":true}`), put[o.DataAttr])
}

// An old item too short to be a record is reported, not read again.
func TestClaimConflictWithUnreadableOldItem(t *testing.T) {
	s := New(fakeAPI{t: t, put: func(*dynamodb.PutItemInput) (*dynamodb.PutItemOutput, error) {
		return nil, &types.ConditionalCheckFailedException{Item: map[string]types.AttributeValue{"id": str("id-1")}}
	}}, "tbl") // a GetItem would fail the test
	rec := mtRecord(idempotent.StatusInProgress)
	_, err := s.Claim(context.Background(), idempotent.Claim{Record: rec, Now: rec.LeaseEnd.Add(-time.Minute)})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "dynamostore: claim id-1:")
	assert.Contains(t, err.Error(), `no "status" attribute`)
}

func TestGetReportsTheReadFailure(t *testing.T) {
	s := New(fakeAPI{t: t, get: func(*dynamodb.GetItemInput) (*dynamodb.GetItemOutput, error) {
		return nil, errors.New("throttled")
	}}, "tbl")
	rec, err := s.Get(context.Background(), "id-1", time.Now())
	assert.Nil(t, rec)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "dynamostore: get id-1:")
	assert.Contains(t, err.Error(), "throttled")
}
