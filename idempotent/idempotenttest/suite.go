package idempotenttest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/internal/testwait"
)

// RunStoreTests runs the Store conformance suite. newStore is called once per subtest; it may return the same
// store every time (every subtest uses fresh record IDs). All instants the suite uses are whole seconds, the
// coarsest precision a store may keep (DynamoDB's TTL attribute holds epoch seconds).
func RunStoreTests(t *testing.T, newStore func(t *testing.T) idempotent.Store) {
	t.Helper()
	base := time.Now().Truncate(time.Second).Add(time.Hour)

	t.Run("ClaimAbsentCreatesInProgressRecord", func(t *testing.T) {
		s, ctx := newStore(t), context.Background()
		rec := inProgress(base)
		existing, err := s.Claim(ctx, idempotent.Claim{Record: rec, Now: base, Takeover: true})
		require.NoError(t, err)
		require.Nil(t, existing)
		got, err := s.Get(ctx, rec.ID, base)
		require.NoError(t, err)
		require.NotNil(t, got)
		assertRecord(t, rec, got)
	})

	t.Run("ClaimLiveRecordReturnsIt", func(t *testing.T) {
		for _, takeover := range []bool{true, false} {
			s, ctx := newStore(t), context.Background()
			first := inProgress(base)
			mustClaim(t, s, first, base)
			second := first
			second.Owner = newToken()
			second.Fingerprint = "other"
			existing, err := s.Claim(ctx, idempotent.Claim{Record: second, Now: base.Add(time.Second), Takeover: takeover})
			require.NoError(t, err)
			require.NotNil(t, existing, "a live INPROGRESS record must block the claim")
			assertRecord(t, first, existing)
		}
	})

	t.Run("ClaimAgainBySameOwnerSucceeds", func(t *testing.T) {
		// A transport-level retry of a claim whose first attempt was applied (its answer lost) meets the record
		// that attempt wrote: the owner token proves it is this claim's, so the claim is won.
		for _, takeover := range []bool{true, false} {
			s, ctx := newStore(t), context.Background()
			rec := inProgress(base)
			mustClaim(t, s, rec, base)
			existing, err := s.Claim(ctx, idempotent.Claim{Record: rec, Now: base, Takeover: takeover})
			require.NoError(t, err)
			require.Nil(t, existing, "takeover=%v: the record is this claim's own", takeover)
			got, err := s.Get(ctx, rec.ID, base)
			require.NoError(t, err)
			assertRecord(t, rec, got)

			// Once completed, the record is a replay for anyone, the same owner included.
			done := completed(rec, base, []byte("r"))
			require.NoError(t, s.Complete(ctx, done, nil))
			existing, err = s.Claim(ctx, idempotent.Claim{Record: rec, Now: base, Takeover: takeover})
			require.NoError(t, err)
			require.NotNil(t, existing, "takeover=%v: a COMPLETED record is never claimed again", takeover)
			assertRecord(t, done, existing)
		}
	})

	t.Run("ClaimCompletedRecordReturnsItWithResponse", func(t *testing.T) {
		s, ctx := newStore(t), context.Background()
		rec := inProgress(base)
		mustClaim(t, s, rec, base)
		done := completed(rec, base, []byte(`{"status":201}`))
		require.NoError(t, s.Complete(ctx, done, nil))

		again := rec
		again.Owner = newToken()
		// Long after any lease: a COMPLETED record has none and must not be taken over.
		later := base.Add(10 * time.Minute)
		existing, err := s.Claim(ctx, idempotent.Claim{Record: again, Now: later, Takeover: true})
		require.NoError(t, err)
		require.NotNil(t, existing)
		assertRecord(t, done, existing)
	})

	t.Run("ClaimExpiredRecordSucceeds", func(t *testing.T) {
		for _, status := range []idempotent.Status{idempotent.StatusInProgress, idempotent.StatusCompleted} {
			for _, takeover := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/takeover=%v", status, takeover), func(t *testing.T) {
					s, ctx := newStore(t), context.Background()
					rec := inProgress(base)
					rec.LeaseEnd = rec.ExpiresAt // the lease does not end before expiry: only expiry can free it
					mustClaim(t, s, rec, base)
					if status == idempotent.StatusCompleted {
						rec = completed(rec, base, []byte("x"))
						require.NoError(t, s.Complete(ctx, rec, nil))
					}
					next := inProgress(rec.ExpiresAt)
					next.ID = rec.ID
					existing, err := s.Claim(ctx, idempotent.Claim{Record: next, Now: rec.ExpiresAt.Add(-time.Second), Takeover: takeover})
					require.NoError(t, err)
					require.NotNil(t, existing, "live one second before expiry")
					existing, err = s.Claim(ctx, idempotent.Claim{Record: next, Now: rec.ExpiresAt, Takeover: takeover})
					require.NoError(t, err)
					require.Nil(t, existing, "an expired record counts as absent")
					got, err := s.Get(ctx, rec.ID, rec.ExpiresAt)
					require.NoError(t, err)
					assertRecord(t, next, got)
				})
			}
		}
	})

	t.Run("ClaimEndedLeaseDependsOnTakeover", func(t *testing.T) {
		s, ctx := newStore(t), context.Background()
		rec := inProgress(base)
		mustClaim(t, s, rec, base)
		next := inProgress(rec.LeaseEnd)
		next.ID = rec.ID

		existing, err := s.Claim(ctx, idempotent.Claim{Record: next, Now: rec.LeaseEnd.Add(-time.Second), Takeover: true})
		require.NoError(t, err)
		require.NotNil(t, existing, "the lease has not ended yet")

		existing, err = s.Claim(ctx, idempotent.Claim{Record: next, Now: rec.LeaseEnd, Takeover: false})
		require.NoError(t, err)
		require.NotNil(t, existing, "without takeover an ended lease still holds the key")
		assertRecord(t, rec, existing)

		existing, err = s.Claim(ctx, idempotent.Claim{Record: next, Now: rec.LeaseEnd, Takeover: true})
		require.NoError(t, err)
		require.Nil(t, existing, "with takeover an ended lease frees the key")
		got, err := s.Get(ctx, rec.ID, rec.LeaseEnd)
		require.NoError(t, err)
		assertRecord(t, next, got)
	})

	t.Run("CompleteByOwner", func(t *testing.T) {
		s, ctx := newStore(t), context.Background()
		rec := inProgress(base)
		mustClaim(t, s, rec, base)
		done := completed(rec, base.Add(2*time.Second), []byte("response"))
		require.NoError(t, s.Complete(ctx, done, nil))
		got, err := s.Get(ctx, rec.ID, base.Add(2*time.Second))
		require.NoError(t, err)
		assertRecord(t, done, got)
	})

	t.Run("ResponseBytesArePreserved", func(t *testing.T) {
		large := make([]byte, 64<<10)
		_, _ = rand.Read(large)
		for name, body := range map[string][]byte{
			"empty":  {},
			"binary": {0, 1, 2, 0xff, 0xfe, '\n', 0},
			"json":   []byte(`{"b": 1,  "a": [1, 2]}`),
			"large":  large,
		} {
			t.Run(name, func(t *testing.T) {
				s, ctx := newStore(t), context.Background()
				rec := inProgress(base)
				mustClaim(t, s, rec, base)
				require.NoError(t, s.Complete(ctx, completed(rec, base, body), nil))
				got, err := s.Get(ctx, rec.ID, base)
				require.NoError(t, err)
				require.NotNil(t, got)
				assert.Equal(t, len(body), len(got.Response))
				assert.True(t, string(body) == string(got.Response), "response bytes changed")
			})
		}
	})

	t.Run("CompleteIsFenced", func(t *testing.T) {
		cases := map[string]func(t *testing.T, s idempotent.Store, rec idempotent.Record) idempotent.Record{
			"OtherOwner": func(t *testing.T, s idempotent.Store, rec idempotent.Record) idempotent.Record {
				mustClaim(t, s, rec, base)
				stale := completed(rec, base, []byte("stale"))
				stale.Owner = newToken()
				return stale
			},
			"Absent": func(t *testing.T, s idempotent.Store, rec idempotent.Record) idempotent.Record {
				return completed(rec, base, []byte("stale"))
			},
			"AlreadyCompleted": func(t *testing.T, s idempotent.Store, rec idempotent.Record) idempotent.Record {
				mustClaim(t, s, rec, base)
				require.NoError(t, s.Complete(context.Background(), completed(rec, base, []byte("first")), nil))
				return completed(rec, base, []byte("second"))
			},
		}
		for name, setup := range cases {
			t.Run(name, func(t *testing.T) {
				s, ctx := newStore(t), context.Background()
				rec := inProgress(base)
				stale := setup(t, s, rec)
				before, err := s.Get(ctx, rec.ID, base)
				require.NoError(t, err)
				err = s.Complete(ctx, stale, nil)
				require.ErrorIs(t, err, idempotent.ErrFenced)
				after, err := s.Get(ctx, rec.ID, base)
				require.NoError(t, err)
				assert.Equal(t, before, after, "a fenced completion must change nothing")
			})
		}
	})

	t.Run("ReleaseByOwnerFreesKey", func(t *testing.T) {
		s, ctx := newStore(t), context.Background()
		rec := inProgress(base)
		mustClaim(t, s, rec, base)
		require.NoError(t, s.Release(ctx, rec.ID, rec.Owner))
		got, err := s.Get(ctx, rec.ID, base)
		require.NoError(t, err)
		assert.Nil(t, got)
		next := inProgress(base)
		next.ID = rec.ID
		mustClaim(t, s, next, base)
	})

	t.Run("ReleaseIsFenced", func(t *testing.T) {
		for _, completeFirst := range []bool{false, true} {
			s, ctx := newStore(t), context.Background()
			rec := inProgress(base)
			mustClaim(t, s, rec, base)
			owner := newToken()
			if completeFirst {
				require.NoError(t, s.Complete(ctx, completed(rec, base, []byte("r")), nil))
				owner = rec.Owner // even the owner cannot delete a completed record
			}
			before, err := s.Get(ctx, rec.ID, base)
			require.NoError(t, err)
			require.ErrorIs(t, s.Release(ctx, rec.ID, owner), idempotent.ErrFenced)
			after, err := s.Get(ctx, rec.ID, base)
			require.NoError(t, err)
			assert.Equal(t, before, after)
		}
	})

	t.Run("ReleaseOfAbsentRecordSucceeds", func(t *testing.T) {
		// A retry of a release whose first attempt was applied (its answer lost) finds no record: nothing of the
		// owner's remains, which is what the release wanted.
		s, ctx := newStore(t), context.Background()
		require.NoError(t, s.Release(ctx, newToken(), newToken()), "never claimed")
		rec := inProgress(base)
		mustClaim(t, s, rec, base)
		require.NoError(t, s.Release(ctx, rec.ID, rec.Owner))
		require.NoError(t, s.Release(ctx, rec.ID, rec.Owner), "released already")
		got, err := s.Get(ctx, rec.ID, base)
		require.NoError(t, err)
		assert.Nil(t, got)
	})

	t.Run("StaleOwnerCannotTouchNewClaim", func(t *testing.T) {
		s, ctx := newStore(t), context.Background()
		stale := inProgress(base)
		mustClaim(t, s, stale, base)
		fresh := inProgress(stale.LeaseEnd)
		fresh.ID = stale.ID
		existing, err := s.Claim(ctx, idempotent.Claim{Record: fresh, Now: stale.LeaseEnd, Takeover: true})
		require.NoError(t, err)
		require.Nil(t, existing)

		require.ErrorIs(t, s.Complete(ctx, completed(stale, stale.LeaseEnd, []byte("stale")), nil), idempotent.ErrFenced)
		require.ErrorIs(t, s.Release(ctx, stale.ID, stale.Owner), idempotent.ErrFenced)
		got, err := s.Get(ctx, stale.ID, stale.LeaseEnd)
		require.NoError(t, err)
		assertRecord(t, fresh, got)
	})

	t.Run("GetTreatsExpiredAsAbsent", func(t *testing.T) {
		s, ctx := newStore(t), context.Background()
		got, err := s.Get(ctx, newToken(), base)
		require.NoError(t, err)
		assert.Nil(t, got, "absent")
		rec := inProgress(base)
		mustClaim(t, s, rec, base)
		got, err = s.Get(ctx, rec.ID, rec.ExpiresAt.Add(-time.Second))
		require.NoError(t, err)
		assert.NotNil(t, got, "live one second before expiry")
		got, err = s.Get(ctx, rec.ID, rec.ExpiresAt)
		require.NoError(t, err)
		assert.Nil(t, got, "expired at ExpiresAt")
	})

	t.Run("UnsupportedEffectWritesNothing", func(t *testing.T) {
		s, ctx := newStore(t), context.Background()
		rec := inProgress(base)
		mustClaim(t, s, rec, base)
		type foreign struct{ X int }
		err := s.Complete(ctx, completed(rec, base, []byte("r")), []idempotent.Effect{foreign{1}})
		require.ErrorIs(t, err, idempotent.ErrUnsupportedEffect)
		got, err := s.Get(ctx, rec.ID, base)
		require.NoError(t, err)
		assertRecord(t, rec, got)
	})

	if _, ok := newStore(t).(idempotent.ClaimCompleter); ok {
		t.Run("ClaimComplete", func(t *testing.T) { runClaimCompleterTests(t, newStore, base) })
		t.Run("MergedRequestsRace", func(t *testing.T) { runMergedRaceTest(t, newStore, base) })
	}
	t.Run("Wait", func(t *testing.T) { runWaitTests(t, newStore, base) })

	t.Run("ConcurrentClaimsHaveOneWinner", func(t *testing.T) {
		s := newStore(t)
		id := newToken()
		const n = 32
		var wg sync.WaitGroup
		results := make([]bool, n)
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rec := inProgress(base)
				rec.ID = id
				existing, err := s.Claim(context.Background(), idempotent.Claim{Record: rec, Now: base, Takeover: true})
				results[i], errs[i] = existing == nil, err
			}()
		}
		testwait.Group(t, &wg, "the concurrent claims")
		winners := 0
		for i := range n {
			require.NoError(t, errs[i])
			if results[i] {
				winners++
			}
		}
		assert.Equal(t, 1, winners)
	})
}

func inProgress(now time.Time) idempotent.Record {
	return idempotent.Record{
		ID:          newToken(),
		Status:      idempotent.StatusInProgress,
		Fingerprint: newToken(),
		Owner:       newToken(),
		LeaseEnd:    now.Add(30 * time.Second),
		ExpiresAt:   now.Add(time.Hour),
	}
}

func completed(rec idempotent.Record, now time.Time, response []byte) idempotent.Record {
	rec.Status = idempotent.StatusCompleted
	rec.Response = response
	rec.LeaseEnd = time.Time{}
	rec.ExpiresAt = now.Add(2 * time.Hour)
	return rec
}

func mustClaim(t *testing.T, s idempotent.Store, rec idempotent.Record, now time.Time) {
	t.Helper()
	existing, err := s.Claim(context.Background(), idempotent.Claim{Record: rec, Now: now, Takeover: true})
	require.NoError(t, err)
	require.Nil(t, existing, "claim of a fresh ID must succeed")
}

// assertRecord compares the fields a store must keep. LeaseEnd matters only while INPROGRESS.
func assertRecord(t *testing.T, want idempotent.Record, got *idempotent.Record) {
	t.Helper()
	require.NotNil(t, got)
	assert.Equal(t, want.ID, got.ID, "ID")
	assert.Equal(t, want.Status, got.Status, "Status")
	assert.Equal(t, want.Fingerprint, got.Fingerprint, "Fingerprint")
	assert.Equal(t, want.Owner, got.Owner, "Owner")
	assert.True(t, want.ExpiresAt.Equal(got.ExpiresAt), "ExpiresAt: want %v, got %v", want.ExpiresAt, got.ExpiresAt)
	if want.Status == idempotent.StatusInProgress {
		assert.True(t, want.LeaseEnd.Equal(got.LeaseEnd), "LeaseEnd: want %v, got %v", want.LeaseEnd, got.LeaseEnd)
	} else {
		assert.Equal(t, string(want.Response), string(got.Response), "Response")
	}
}

func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
