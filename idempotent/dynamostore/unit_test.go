package dynamostore

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/internal/ddblocal/ddbtest"
)

// fakeAPI is an API made of functions; a nil function fails the test when called.
type fakeAPI struct {
	API // the table calls, none of which a Store makes: nil, so a call would panic
	t   *testing.T
	put func(*dynamodb.PutItemInput) (*dynamodb.PutItemOutput, error)
	get func(*dynamodb.GetItemInput) (*dynamodb.GetItemOutput, error)
	del func(*dynamodb.DeleteItemInput) (*dynamodb.DeleteItemOutput, error)
	tx  func(*dynamodb.TransactWriteItemsInput) (*dynamodb.TransactWriteItemsOutput, error)
}

func (f fakeAPI) PutItem(_ context.Context, in *dynamodb.PutItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	require.NotNil(f.t, f.put, "unexpected PutItem")
	return f.put(in)
}

func (f fakeAPI) GetItem(_ context.Context, in *dynamodb.GetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	require.NotNil(f.t, f.get, "unexpected GetItem")
	return f.get(in)
}

func (f fakeAPI) DeleteItem(_ context.Context, in *dynamodb.DeleteItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	require.NotNil(f.t, f.del, "unexpected DeleteItem")
	return f.del(in)
}

func (f fakeAPI) TransactWriteItems(_ context.Context, in *dynamodb.TransactWriteItemsInput, _ ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	require.NotNil(f.t, f.tx, "unexpected TransactWriteItems")
	return f.tx(in)
}

var now = time.Unix(1_800_000_000, 0)

func record() idempotent.Record {
	return idempotent.Record{
		ID: strings.Repeat("ab", 32), Status: idempotent.StatusInProgress, Fingerprint: "fp", Owner: "owner-1",
		LeaseEnd: now.Add(30 * time.Second), ExpiresAt: now.Add(time.Hour),
	}
}

func completedRecord() idempotent.Record {
	r := record()
	r.Status, r.Response, r.LeaseEnd = idempotent.StatusCompleted, []byte(`{"ok":true}`), time.Time{}
	return r
}

func TestClaimCondition(t *testing.T) {
	var got *dynamodb.PutItemInput
	s := New(fakeAPI{t: t, put: func(in *dynamodb.PutItemInput) (*dynamodb.PutItemOutput, error) {
		got = in
		return &dynamodb.PutItemOutput{}, nil
	}}, "tbl")
	for _, takeover := range []bool{false, true} {
		existing, err := s.Claim(context.Background(), idempotent.Claim{Record: record(), Now: now.Add(1500 * time.Millisecond), Takeover: takeover})
		require.NoError(t, err)
		require.Nil(t, existing)
		cond := aws.ToString(got.ConditionExpression)
		// Resolve the placeholders to read the condition as DynamoDB will.
		for k, v := range got.ExpressionAttributeNames {
			cond = strings.ReplaceAll(cond, k, v)
		}
		for k, v := range got.ExpressionAttributeValues {
			switch v := v.(type) {
			case *types.AttributeValueMemberS:
				cond = strings.ReplaceAll(cond, k, "'"+v.Value+"'")
			case *types.AttributeValueMemberN:
				cond = strings.ReplaceAll(cond, k, v.Value)
			}
		}
		want := "(attribute_not_exists (id)) OR (expiration <= 1800000001)"
		if takeover {
			want = "((attribute_not_exists (id)) OR (expiration <= 1800000001)) OR ((status = 'INPROGRESS') AND (in_progress_expiration <= 1800000001500))"
		}
		assert.Equal(t, want, cond, "takeover=%v", takeover)
		assert.Equal(t, types.ReturnValuesOnConditionCheckFailureAllOld, got.ReturnValuesOnConditionCheckFailure)
	}
}

// TestClaimInputMatchesBuilder checks that the condition built once and filled per call is exactly what the
// expression builder makes for each claim, and that filling it leaves the shared parts alone.
func TestClaimInputMatchesBuilder(t *testing.T) {
	for _, optFns := range [][]func(*Options){nil, {func(o *Options) {
		o.IDAttr, o.ExpirationAttr, o.StatusAttr, o.InProgressExpirationAttr = "pk", "ttl.at", "state", "lease"
	}}} {
		s := New(fakeAPI{t: t}, "tbl", optFns...)
		o := s.Options()
		for _, instant := range []time.Time{now, now.Add(1500 * time.Millisecond), time.Unix(0, 0), time.Unix(-1, 0)} {
			for _, takeover := range []bool{false, true} {
				name := expression.NameNoDotSplit
				want := expression.AttributeNotExists(name(o.IDAttr)).
					Or(name(o.ExpirationAttr).LessThanEqual(expression.Value(instant.Unix())))
				if takeover {
					want = want.Or(expression.And(
						name(o.StatusAttr).Equal(expression.Value(idempotent.StatusInProgress.String())),
						name(o.InProgressExpirationAttr).LessThanEqual(expression.Value(instant.UnixMilli())),
					))
				}
				expr, err := expression.NewBuilder().WithCondition(want).Build()
				require.NoError(t, err)
				cond, names, values := s.claimInput(idempotent.Claim{Now: instant, Takeover: takeover})
				assert.Equal(t, *expr.Condition(), *cond)
				assert.Equal(t, expr.Names(), names)
				assert.Equal(t, expr.Values(), values)
			}
		}
		// The template keeps its stand-ins.
		assert.Equal(t, &types.AttributeValueMemberN{Value: "-1"}, s.claim[1].values[s.claim[1].seconds])
		assert.Equal(t, &types.AttributeValueMemberN{Value: "-2"}, s.claim[1].values[s.claim[1].millis])
	}
}

func TestRounding(t *testing.T) {
	cases := []struct {
		in       time.Time
		sec, mil int64
	}{
		{time.Unix(100, 0), 100, 100_000},
		{time.Unix(100, 1), 101, 100_001},
		{time.Unix(100, int64(time.Millisecond)), 101, 100_001},
		{time.Unix(100, 999_999_999), 101, 101_000},
	}
	for _, c := range cases {
		assert.Equal(t, c.sec, ceilSeconds(c.in), "seconds of %v", c.in)
		assert.Equal(t, c.mil, ceilMillis(c.in), "millis of %v", c.in)
	}
}

func TestClaimFallback(t *testing.T) {
	ccf := &types.ConditionalCheckFailedException{Message: aws.String("The conditional request failed")}
	conflict := func(*dynamodb.PutItemInput) (*dynamodb.PutItemOutput, error) { return nil, ccf }
	s := New(fakeAPI{t: t, put: conflict}, "tbl")
	holder := record()
	holder.Owner = "owner-2" // another invocation's claim (our own is TestClaimOwnRecord's)
	live, err := s.item(holder, false)
	require.NoError(t, err)
	expired := record()
	expired.ExpiresAt = now
	dead, err := s.item(expired, false)
	require.NoError(t, err)

	cases := map[string]struct {
		item    map[string]types.AttributeValue
		wantErr error
	}{
		"Found":   {item: live},
		"Gone":    {item: nil, wantErr: idempotent.ErrRecordChanged},
		"Expired": {item: dead, wantErr: idempotent.ErrRecordChanged},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			gets := 0
			s.client = fakeAPI{t: t, put: conflict, get: func(in *dynamodb.GetItemInput) (*dynamodb.GetItemOutput, error) {
				gets++
				assert.True(t, aws.ToBool(in.ConsistentRead))
				return &dynamodb.GetItemOutput{Item: tc.item}, nil
			}}
			existing, err := s.Claim(context.Background(), idempotent.Claim{Record: record(), Now: now, Takeover: true})
			assert.Equal(t, 1, gets)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, holder.Owner, existing.Owner)
		})
	}

	t.Run("OtherErrorsWrapped", func(t *testing.T) {
		boom := &smithy.GenericAPIError{Code: "InternalServerError", Message: "boom"}
		s.client = fakeAPI{t: t, put: func(*dynamodb.PutItemInput) (*dynamodb.PutItemOutput, error) { return nil, boom }}
		_, err := s.Claim(context.Background(), idempotent.Claim{Record: record(), Now: now})
		require.ErrorIs(t, err, boom)
	})
}

func txCancelled(codes ...string) error {
	reasons := make([]types.CancellationReason, len(codes))
	for i, c := range codes {
		reasons[i] = types.CancellationReason{Code: aws.String(c)}
		if c == "ConditionalCheckFailed" {
			reasons[i].Message = aws.String("The conditional request failed")
		}
	}
	return &types.TransactionCanceledException{Message: aws.String("Transaction cancelled"), CancellationReasons: reasons}
}

func putEffect(table string) types.TransactWriteItem {
	return types.TransactWriteItem{Put: &types.Put{TableName: aws.String(table), Item: map[string]types.AttributeValue{"id": str("x")}}}
}

func TestCompleteWithEffects(t *testing.T) {
	ctx := context.Background()
	effects := []idempotent.Effect{putEffect("orders"), &types.TransactWriteItem{Update: &types.Update{TableName: aws.String("stock")}}}

	t.Run("OneTransaction", func(t *testing.T) {
		var got *dynamodb.TransactWriteItemsInput
		s := New(fakeAPI{t: t, tx: func(in *dynamodb.TransactWriteItemsInput) (*dynamodb.TransactWriteItemsOutput, error) {
			got = in
			return &dynamodb.TransactWriteItemsOutput{}, nil
		}}, "tbl")
		require.NoError(t, s.Complete(ctx, completedRecord(), effects))
		require.Len(t, got.TransactItems, 3)
		first := got.TransactItems[0].Put
		require.NotNil(t, first)
		assert.Equal(t, "tbl", aws.ToString(first.TableName))
		assert.Equal(t, "#status = :inprogress AND #owner = :owner", aws.ToString(first.ConditionExpression))
		assert.Equal(t, str("owner-1"), first.ExpressionAttributeValues[":owner"])
		assert.Equal(t, "orders", aws.ToString(got.TransactItems[1].Put.TableName))
		assert.Equal(t, "stock", aws.ToString(got.TransactItems[2].Update.TableName))
		token := aws.ToString(got.ClientRequestToken)
		assert.Len(t, token, 36)
		assert.Equal(t, token, requestToken("tbl", completedRecord()), "same owner, same token")
		other := completedRecord()
		other.Owner = "owner-2"
		assert.NotEqual(t, token, requestToken("tbl", other))
		assert.NotEqual(t, token, requestToken("other-table", completedRecord()))
	})

	cases := map[string]struct {
		err      error
		is       []error
		isNot    []error
		contains string
	}{
		"Fenced":          {err: txCancelled("ConditionalCheckFailed", "None", "None"), is: []error{idempotent.ErrFenced}, isNot: []error{idempotent.ErrEffectFailed}},
		"FencedAndEffect": {err: txCancelled("ConditionalCheckFailed", "ConditionalCheckFailed", "None"), is: []error{idempotent.ErrFenced}, isNot: []error{idempotent.ErrEffectFailed}},
		"SecondEffect": {
			err: txCancelled("None", "None", "ConditionalCheckFailed"), is: []error{idempotent.ErrEffectFailed},
			isNot: []error{idempotent.ErrFenced}, contains: "effect 1 (Update on table stock) failed: ConditionalCheckFailed: The conditional request failed",
		},
		"Conflict": {
			err: txCancelled("None", "TransactionConflict", "None"), isNot: []error{idempotent.ErrFenced, idempotent.ErrEffectFailed, idempotent.ErrUnsupportedEffect, idempotent.ErrPermanent},
			contains: "None, TransactionConflict, None",
		},
		"Invalid": {
			err: &smithy.GenericAPIError{Code: "ValidationException", Message: "Transaction request cannot include multiple operations on one item"},
			is:  []error{idempotent.ErrPermanent}, isNot: []error{idempotent.ErrUnsupportedEffect},
		},
		"Throttled": {
			err:   &smithy.GenericAPIError{Code: "ThrottlingException", Message: "slow down"},
			isNot: []error{idempotent.ErrFenced, idempotent.ErrEffectFailed, idempotent.ErrUnsupportedEffect, idempotent.ErrPermanent},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := New(fakeAPI{t: t, tx: func(*dynamodb.TransactWriteItemsInput) (*dynamodb.TransactWriteItemsOutput, error) {
				return nil, tc.err
			}}, "tbl")
			err := s.Complete(ctx, completedRecord(), effects)
			require.Error(t, err)
			require.ErrorIs(t, err, tc.err, "the SDK error stays reachable")
			for _, e := range tc.is {
				assert.ErrorIs(t, err, e)
			}
			for _, e := range tc.isNot {
				assert.NotErrorIs(t, err, e)
			}
			assert.Contains(t, err.Error(), tc.contains)
		})
	}

	t.Run("OurCommitSeenAgain", func(t *testing.T) {
		// A retry whose first attempt committed: the fence fails but the old item is exactly ours.
		s := New(fakeAPI{t: t}, "tbl")
		s.client = fakeAPI{t: t, tx: func(in *dynamodb.TransactWriteItemsInput) (*dynamodb.TransactWriteItemsOutput, error) {
			return nil, &types.TransactionCanceledException{CancellationReasons: []types.CancellationReason{
				{Code: aws.String("ConditionalCheckFailed"), Item: in.TransactItems[0].Put.Item}, {Code: aws.String("None")}, {Code: aws.String("None")},
			}}
		}}
		require.NoError(t, s.Complete(ctx, completedRecord(), effects))
	})
}

func TestUnsupportedEffectsWriteNothing(t *testing.T) {
	s := New(fakeAPI{t: t}, "tbl") // any call fails the test
	type foreign struct{}
	cases := map[string][]idempotent.Effect{
		"ForeignType":  {foreign{}},
		"InputType":    {dynamodb.PutItemInput{}},
		"NilPointer":   {(*types.TransactWriteItem)(nil)},
		"Empty":        {types.TransactWriteItem{}},
		"TwoActions":   {types.TransactWriteItem{Put: &types.Put{}, Delete: &types.Delete{}}},
		"SecondIsBad":  {putEffect("t"), foreign{}},
		"TooManyItems": make([]idempotent.Effect, MaxEffects+1),
	}
	for i := range cases["TooManyItems"] {
		cases["TooManyItems"][i] = putEffect(fmt.Sprint("t", i))
	}
	for name, effects := range cases {
		t.Run(name, func(t *testing.T) {
			err := s.Complete(context.Background(), completedRecord(), effects)
			require.ErrorIs(t, err, idempotent.ErrUnsupportedEffect)
		})
	}
	err := s.Complete(context.Background(), completedRecord(), cases["TooManyItems"])
	assert.ErrorContains(t, err, "100 items per transaction")

	var n int
	s.client = fakeAPI{t: t, tx: func(in *dynamodb.TransactWriteItemsInput) (*dynamodb.TransactWriteItemsOutput, error) {
		n = len(in.TransactItems)
		return &dynamodb.TransactWriteItemsOutput{}, nil
	}}
	require.NoError(t, s.Complete(context.Background(), completedRecord(), cases["TooManyItems"][:MaxEffects]))
	assert.Equal(t, 100, n)
}

func TestHelpersAddEffects(t *testing.T) {
	assert.False(t, Put(context.Background(), &types.Put{}), "outside an execution")
	ctx := context.Background()
	var got []idempotent.Effect
	s := New(fakeAPI{t: t,
		put: func(*dynamodb.PutItemInput) (*dynamodb.PutItemOutput, error) { return &dynamodb.PutItemOutput{}, nil },
		tx: func(in *dynamodb.TransactWriteItemsInput) (*dynamodb.TransactWriteItemsOutput, error) {
			for _, it := range in.TransactItems[1:] {
				got = append(got, it)
			}
			return &dynamodb.TransactWriteItemsOutput{}, nil
		}}, "tbl")
	_, err := idempotent.Run(ctx, idempotent.New(s), idempotent.Request{Key: "k", Fingerprint: "f"}, idempotent.Spec[int]{},
		func(ctx context.Context) (int, error) {
			require.True(t, Put(ctx, &types.Put{TableName: aws.String("a")}))
			require.True(t, Update(ctx, &types.Update{TableName: aws.String("b")}))
			require.True(t, Delete(ctx, &types.Delete{TableName: aws.String("c")}))
			require.True(t, ConditionCheck(ctx, &types.ConditionCheck{TableName: aws.String("d")}))
			return 1, nil
		})
	require.NoError(t, err)
	require.Len(t, got, 4)
	assert.Equal(t, []string{"Put", "Update", "Delete", "ConditionCheck"},
		[]string{kind(got[0].(types.TransactWriteItem)), kind(got[1].(types.TransactWriteItem)), kind(got[2].(types.TransactWriteItem)), kind(got[3].(types.TransactWriteItem))})
}

func TestCompleteFence(t *testing.T) {
	ctx := context.Background()
	s := New(fakeAPI{t: t}, "tbl")
	ours, err := s.item(completedRecord(), false)
	require.NoError(t, err)
	other := completedRecord()
	other.Response = []byte("other")
	theirs, err := s.item(other, false)
	require.NoError(t, err)

	for name, tc := range map[string]struct {
		old     map[string]types.AttributeValue
		wantErr bool
		reason  string
	}{
		"Absent":            {old: nil, wantErr: true, reason: "record absent"},
		"CompletedByOthers": {old: theirs, wantErr: true, reason: "record is COMPLETED"},
		"OurEarlierAttempt": {old: ours, wantErr: false},
	} {
		t.Run(name, func(t *testing.T) {
			s.client = fakeAPI{t: t, put: func(in *dynamodb.PutItemInput) (*dynamodb.PutItemOutput, error) {
				assert.Equal(t, types.ReturnValuesOnConditionCheckFailureAllOld, in.ReturnValuesOnConditionCheckFailure)
				return nil, &types.ConditionalCheckFailedException{Item: tc.old}
			}}
			err := s.Complete(ctx, completedRecord(), nil)
			if !tc.wantErr {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, idempotent.ErrFenced)
			assert.Contains(t, err.Error(), tc.reason)
		})
	}
}

// TestCompletePermanent: a completion DynamoDB refuses as malformed is marked permanent, so the engine does not
// retry it; a throttled one is not.
func TestCompletePermanent(t *testing.T) {
	for name, tc := range map[string]struct {
		err       error
		permanent bool
	}{
		"Invalid":   {err: &smithy.GenericAPIError{Code: "ValidationException", Message: "Item size has exceeded the maximum allowed size"}, permanent: true},
		"Throttled": {err: &smithy.GenericAPIError{Code: "ThrottlingException", Message: "slow down"}},
		"Transport": {err: errors.New("read: connection reset by peer")},
	} {
		t.Run(name, func(t *testing.T) {
			s := New(fakeAPI{t: t, put: func(*dynamodb.PutItemInput) (*dynamodb.PutItemOutput, error) { return nil, tc.err }}, "tbl")
			err := s.Complete(context.Background(), completedRecord(), nil)
			require.ErrorIs(t, err, tc.err, "the SDK error stays reachable")
			assert.Equal(t, tc.permanent, errors.Is(err, idempotent.ErrPermanent))
		})
	}
}

// TestPermanentErrors: every call marks DynamoDB's refusals that no retry can change (a missing table, denied
// access, a malformed request) with ErrPermanent, so the adapters answer 500 without Retry-After; throttling,
// server faults and connection failures stay transient.
func TestPermanentErrors(t *testing.T) {
	codes := map[string]bool{
		"ResourceNotFoundException": true, "AccessDeniedException": true, "ValidationException": true,
		"UnrecognizedClientException": true, "MissingAuthenticationTokenException": true, "InvalidSignatureException": true,
		"ThrottlingException": false, "ProvisionedThroughputExceededException": false, "InternalServerError": false,
	}
	for code, permanent := range codes {
		t.Run(code, func(t *testing.T) {
			apiErr := &smithy.GenericAPIError{Code: code, Message: "m"}
			fail := fakeAPI{t: t,
				put: func(*dynamodb.PutItemInput) (*dynamodb.PutItemOutput, error) { return nil, apiErr },
				get: func(*dynamodb.GetItemInput) (*dynamodb.GetItemOutput, error) { return nil, apiErr },
				del: func(*dynamodb.DeleteItemInput) (*dynamodb.DeleteItemOutput, error) { return nil, apiErr },
				tx: func(*dynamodb.TransactWriteItemsInput) (*dynamodb.TransactWriteItemsOutput, error) {
					return nil, apiErr
				},
			}
			s := New(fail, "tbl")
			_, claimErr := s.Claim(context.Background(), idempotent.Claim{Record: record(), Now: now})
			_, getErr := s.Get(context.Background(), record().ID, now)
			_, mergedErr := s.ClaimComplete(context.Background(), idempotent.Claim{Record: record(), Now: now}, nil)
			_, mergedTxErr := s.ClaimComplete(context.Background(), idempotent.Claim{Record: record(), Now: now}, []idempotent.Effect{putEffect("o")})
			for op, err := range map[string]error{
				"claim":                  claimErr,
				"complete":               s.Complete(context.Background(), completedRecord(), nil),
				"atomic":                 s.Complete(context.Background(), completedRecord(), []idempotent.Effect{types.TransactWriteItem{Put: &types.Put{TableName: aws.String("o"), Item: map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: "1"}}}}}),
				"release":                s.Release(context.Background(), record().ID, "owner-1"),
				"get":                    getErr,
				"claim-complete":         mergedErr,
				"claim-complete-effects": mergedTxErr,
			} {
				require.ErrorIs(t, err, apiErr, "%s: the SDK error stays reachable", op)
				assert.Equal(t, permanent, errors.Is(err, idempotent.ErrPermanent), op)
			}
		})
	}
	// A connection reset on every attempt is transient.
	reset := fmt.Errorf("send request failed: %w", syscall.ECONNRESET)
	s := New(fakeAPI{t: t, put: func(*dynamodb.PutItemInput) (*dynamodb.PutItemOutput, error) { return nil, reset }}, "tbl")
	_, err := s.Claim(context.Background(), idempotent.Claim{Record: record(), Now: now})
	require.ErrorIs(t, err, syscall.ECONNRESET)
	assert.NotErrorIs(t, err, idempotent.ErrPermanent)
}

// TestClaimOwnRecord: a claim whose condition fails on an INPROGRESS record holding its own owner token (an SDK
// retry after an applied attempt whose answer was lost) has won, whether the record comes back with the failure or
// through the GetItem fallback. Any other record is returned.
func TestClaimOwnRecord(t *testing.T) {
	s := New(fakeAPI{t: t}, "tbl")
	item := func(rec idempotent.Record) map[string]types.AttributeValue {
		it, err := s.item(rec, false)
		require.NoError(t, err)
		return it
	}
	other := record()
	other.Owner = "owner-2"
	for name, tc := range map[string]struct {
		old map[string]types.AttributeValue
		won bool
	}{
		"Ours":           {old: item(record()), won: true},
		"OtherOwner":     {old: item(other)},
		"CompletedByUs":  {old: item(completedRecord())},
		"OtherFinalised": {old: item(func() idempotent.Record { r := completedRecord(); r.Owner = "owner-2"; return r }())},
	} {
		for _, fallback := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/fallback=%v", name, fallback), func(t *testing.T) {
				api := fakeAPI{t: t, put: func(*dynamodb.PutItemInput) (*dynamodb.PutItemOutput, error) {
					if fallback {
						return nil, &types.ConditionalCheckFailedException{}
					}
					return nil, &types.ConditionalCheckFailedException{Item: tc.old}
				}}
				if fallback {
					api.get = func(*dynamodb.GetItemInput) (*dynamodb.GetItemOutput, error) {
						return &dynamodb.GetItemOutput{Item: tc.old}, nil
					}
				}
				s.client = api
				existing, err := s.Claim(context.Background(), idempotent.Claim{Record: record(), Now: now, Takeover: true})
				require.NoError(t, err)
				if tc.won {
					assert.Nil(t, existing, "the claim is ours")
					return
				}
				require.NotNil(t, existing)
				want, err := s.decode(tc.old)
				require.NoError(t, err)
				assert.Equal(t, want.rec, *existing)
			})
		}
	}
}

// TestReleaseCondition: Release deletes the record when it is absent or INPROGRESS and ours, so a retry whose first
// attempt deleted it succeeds; a record that is COMPLETED or held by another owner fails the condition and the
// fence.
func TestReleaseCondition(t *testing.T) {
	var got *dynamodb.DeleteItemInput
	var fail error
	s := New(fakeAPI{t: t, del: func(in *dynamodb.DeleteItemInput) (*dynamodb.DeleteItemOutput, error) {
		got = in
		return &dynamodb.DeleteItemOutput{}, fail
	}}, "tbl")
	require.NoError(t, s.Release(context.Background(), record().ID, "owner-1"))
	cond := aws.ToString(got.ConditionExpression)
	for k, v := range got.ExpressionAttributeNames {
		cond = strings.ReplaceAll(cond, k, v)
	}
	for k, v := range got.ExpressionAttributeValues {
		cond = strings.ReplaceAll(cond, k, "'"+v.(*types.AttributeValueMemberS).Value+"'")
	}
	assert.Equal(t, "attribute_not_exists(id) OR (status = 'INPROGRESS' AND owner = 'owner-1')", cond)
	assert.Equal(t, types.ReturnValuesOnConditionCheckFailureAllOld, got.ReturnValuesOnConditionCheckFailure)

	other := record()
	other.Owner = "owner-2"
	for name, tc := range map[string]struct {
		old    idempotent.Record
		reason string
	}{
		"HeldByOthers": {old: other, reason: "record held by another invocation"},
		"Completed":    {old: completedRecord(), reason: "record is COMPLETED"},
	} {
		t.Run(name, func(t *testing.T) {
			old, err := s.item(tc.old, false)
			require.NoError(t, err)
			fail = &types.ConditionalCheckFailedException{Item: old}
			err = s.Release(context.Background(), record().ID, "owner-1")
			require.ErrorIs(t, err, idempotent.ErrFenced)
			assert.Contains(t, err.Error(), tc.reason)
		})
	}
}

func TestDataEncoding(t *testing.T) {
	random := make([]byte, 8<<10)
	_, _ = rand.Read(random)
	jsonDoc := []byte(strings.Repeat(`{"k":"v"},`, 1000))
	cases := map[string]struct {
		threshold int
		resp      []byte
		kind      string // S, B
		enc       string
	}{
		"SmallText":        {0, []byte(`{"a":1}`), "S", ""},
		"Empty":            {0, []byte{}, "S", ""},
		"Binary":           {0, []byte{0xff, 0xfe, 0}, "B", ""},
		"LargeText":        {0, jsonDoc, "B", EncodingGzip},
		"Incompressible":   {0, random, "B", ""},
		"BelowThreshold":   {1 << 20, jsonDoc, "S", ""},
		"CompressionOff":   {-1, jsonDoc, "S", ""},
		"LowThresholdTiny": {1, []byte("a"), "S", ""}, // gzip would be larger
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := New(fakeAPI{t: t}, "tbl", func(o *Options) { o.CompressThreshold = tc.threshold })
			rec := completedRecord()
			rec.Response = tc.resp
			it, err := s.item(rec, false)
			require.NoError(t, err)
			switch tc.kind {
			case "S":
				assert.IsType(t, &types.AttributeValueMemberS{}, it["data"])
			case "B":
				assert.IsType(t, &types.AttributeValueMemberB{}, it["data"])
			}
			if tc.enc == "" {
				assert.NotContains(t, it, "data_encoding")
			} else {
				assert.Equal(t, str(tc.enc), it["data_encoding"])
			}
			d, err := s.decode(it)
			require.NoError(t, err)
			assert.Equal(t, string(tc.resp), string(d.rec.Response))
		})
	}

	t.Run("UnknownEncodingIsAnError", func(t *testing.T) {
		s := New(fakeAPI{t: t}, "tbl")
		it, err := s.item(completedRecord(), false)
		require.NoError(t, err)
		it["data_encoding"] = str("zstd")
		_, err = s.decode(it)
		require.ErrorContains(t, err, `unknown data encoding "zstd"`)
	})
}

func TestNewRejectsDuplicateAttributeNames(t *testing.T) {
	assert.Panics(t, func() { New(fakeAPI{t: t}, "tbl", func(o *Options) { o.SortKeyAttr = "id" }) })
	assert.Panics(t, func() { New(fakeAPI{t: t}, "tbl", func(o *Options) { o.DataAttr = "status" }) })
	assert.NotPanics(t, func() { New(fakeAPI{t: t}, "tbl", func(o *Options) { o.SortKeyAttr = "sk" }) })
}

// The size estimate must err high: an item it accepts must be accepted by DynamoDB, or a too-large response
// would fail its completion, stay INPROGRESS and run again after the lease. DynamoDB Local enforces the limit.
func TestItemSizeEstimateIsSafe(t *testing.T) {
	client := ddbtest.Client(t)
	ctx := context.Background()
	table := ddbtest.UniqueName(t, "idem")
	require.NoError(t, CreateTable(ctx, client, table))
	t.Cleanup(func() {
		_, _ = client.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(table)})
	})
	s := New(client, table, func(o *Options) { o.CompressThreshold = -1 })

	rec := completedRecord()
	rec.Response = nil
	base, err := s.item(rec, false)
	require.NoError(t, err)
	// The largest response Complete still stores as data.
	rec.Response = []byte(strings.Repeat("x", maxItemSize-sizeMargin-itemSize(base)))
	it, err := s.item(rec, false)
	require.NoError(t, err)
	require.Equal(t, maxItemSize-sizeMargin, itemSize(it))
	_, err = client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: it})
	require.NoError(t, err, "DynamoDB accepts the largest item the estimate allows")

	// DynamoDB refuses an item over 400 KB, which is why Complete must not send one.
	rec.Response = []byte(strings.Repeat("x", maxItemSize+1))
	it, err = s.item(rec, false)
	require.NoError(t, err)
	_, err = client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: it})
	var ae smithy.APIError
	require.True(t, errors.As(err, &ae), "got %v", err)
	assert.Equal(t, "ValidationException", ae.ErrorCode())

	// Complete on such a record writes the marker instead, in one call.
	claim := record()
	claim.ID = strings.Repeat("cd", 32)
	existing, err := s.Claim(ctx, idempotent.Claim{Record: claim, Now: now})
	require.NoError(t, err)
	require.Nil(t, existing)
	done := claim
	done.Status, done.Response = idempotent.StatusCompleted, rec.Response
	require.NoError(t, s.Complete(ctx, done, nil))
	got, err := s.Get(ctx, claim.ID, now)
	require.NoError(t, err)
	assert.Equal(t, idempotent.StatusCompleted, got.Status)
	assert.Nil(t, got.Response)
}
