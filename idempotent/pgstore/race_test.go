package pgstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/pgstore"
	"github.com/idemkit/idemkit/internal/pglocal/pgtest"
)

// These tests hold a row change uncommitted in a transaction of their own, start a store call that must wait for
// it, commit, and check the store call's answer: the cases where the statement's snapshot predates the row
// version it meets.

// waitBlocked waits until a statement starting with prefix waits for a lock, so that the test's commit lands
// while it is blocked.
func waitBlocked(t *testing.T, prefix string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		var n int
		require.NoError(t, pgtest.Pool(t).QueryRow(context.Background(),
			`SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1`, prefix+"%").Scan(&n))
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no statement starting with %q blocked within a minute", prefix)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition, bounded above
	}
}

func record(now time.Time, lease time.Duration) idempotent.Record {
	return idempotent.Record{
		ID: newID(), Status: idempotent.StatusInProgress, Fingerprint: "fp", Owner: newID(),
		LeaseEnd: now.Add(lease), ExpiresAt: now.Add(time.Hour),
	}
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func insertSQL(table string) string {
	return `INSERT INTO ` + pgx.Identifier{table}.Sanitize() + ` (id, status, expiration, in_progress_expiration, validation, owner)
		VALUES ($1, 'INPROGRESS', $2, $3, $4, $5)`
}

func TestClaimMeetsRowCommittedAfterItsSnapshot(t *testing.T) {
	ctx := context.Background()
	opt := newTable(t)
	o := pgstore.Options{}
	opt(&o)
	store := pgstore.New(pgtest.Pool(t), opt)
	now := time.Now().Truncate(time.Second)

	t.Run("FirstClaimRacing", func(t *testing.T) {
		// Another claim inserted the key and has not committed: our claim waits on the unique index, then finds
		// a row that its snapshot cannot see. It must still answer with that record.
		other := record(now, time.Minute)
		tx, err := pgtest.Pool(t).Begin(ctx)
		require.NoError(t, err)
		defer func() { _ = tx.Rollback(ctx) }()
		_, err = tx.Exec(ctx, insertSQL(o.Table), other.ID, other.ExpiresAt, other.LeaseEnd, other.Fingerprint, other.Owner)
		require.NoError(t, err)

		mine := record(now, time.Minute)
		mine.ID = other.ID
		type answer struct {
			rec *idempotent.Record
			err error
		}
		got := make(chan answer, 1)
		go func() {
			rec, err := store.Claim(ctx, idempotent.Claim{Record: mine, Now: now, Takeover: true})
			got <- answer{rec, err}
		}()
		waitBlocked(t, "WITH claimed")
		require.NoError(t, tx.Commit(ctx))
		a := wait(t, got, "the blocked claim")
		require.NoError(t, a.err)
		require.NotNil(t, a.rec, "the other claim won")
		assert.Equal(t, other.Owner, a.rec.Owner)
		assert.Equal(t, idempotent.StatusInProgress, a.rec.Status)
	})

	t.Run("TakeoverRacing", func(t *testing.T) {
		// The record has expired; another claim is taking it over, uncommitted. Our claim's snapshot shows the
		// expired record, but the upsert judges the new version, live, and does not take it: Claim must answer
		// with the new holder, not with the stale expired record.
		old := record(now.Add(-2*time.Hour), time.Minute)
		_, err := store.Claim(ctx, idempotent.Claim{Record: old, Now: old.LeaseEnd.Add(-time.Minute)})
		require.NoError(t, err)

		tx, err := pgtest.Pool(t).Begin(ctx)
		require.NoError(t, err)
		defer func() { _ = tx.Rollback(ctx) }()
		taker := record(now, time.Minute)
		_, err = tx.Exec(ctx, `UPDATE `+pgx.Identifier{o.Table}.Sanitize()+` SET owner = $2, expiration = $3, in_progress_expiration = $4 WHERE id = $1`,
			old.ID, taker.Owner, taker.ExpiresAt, taker.LeaseEnd)
		require.NoError(t, err)

		mine := record(now, time.Minute)
		mine.ID = old.ID
		got := make(chan *idempotent.Record, 1)
		errs := make(chan error, 1)
		go func() {
			rec, err := store.Claim(ctx, idempotent.Claim{Record: mine, Now: now, Takeover: true})
			got <- rec
			errs <- err
		}()
		waitBlocked(t, "WITH claimed")
		require.NoError(t, tx.Commit(ctx))
		rec := wait(t, got, "the blocked claim")
		require.NoError(t, wait(t, errs, "the blocked claim's error"))
		require.NotNil(t, rec, "the concurrent takeover holds the key")
		assert.Equal(t, taker.Owner, rec.Owner)
		assert.False(t, rec.Claimable(now, true), "a live record, not the stale snapshot")
	})

	t.Run("ReleaseRacingDelete", func(t *testing.T) {
		// Our record is being deleted by someone else (a sweeper, an operator): Release waits, finds it gone
		// and reports it released, since nothing of ours remains.
		rec := record(now, time.Minute)
		_, err := store.Claim(ctx, idempotent.Claim{Record: rec, Now: now})
		require.NoError(t, err)
		tx, err := pgtest.Pool(t).Begin(ctx)
		require.NoError(t, err)
		defer func() { _ = tx.Rollback(ctx) }()
		_, err = tx.Exec(ctx, `DELETE FROM `+pgx.Identifier{o.Table}.Sanitize()+` WHERE id = $1`, rec.ID)
		require.NoError(t, err)
		errs := make(chan error, 1)
		go func() { errs <- store.Release(ctx, rec.ID, rec.Owner) }()
		waitBlocked(t, "WITH gone")
		require.NoError(t, tx.Commit(ctx))
		assert.NoError(t, wait(t, errs, "the blocked release"))
	})

	t.Run("ReleaseRacingTakeover", func(t *testing.T) {
		// Our lease ended and another invocation is taking the key over: Release waits, then must not delete
		// the new holder's record, and says so.
		rec := record(now, time.Minute)
		_, err := store.Claim(ctx, idempotent.Claim{Record: rec, Now: now})
		require.NoError(t, err)
		tx, err := pgtest.Pool(t).Begin(ctx)
		require.NoError(t, err)
		defer func() { _ = tx.Rollback(ctx) }()
		_, err = tx.Exec(ctx, `UPDATE `+pgx.Identifier{o.Table}.Sanitize()+` SET owner = 'taker' WHERE id = $1`, rec.ID)
		require.NoError(t, err)
		errs := make(chan error, 1)
		go func() { errs <- store.Release(ctx, rec.ID, rec.Owner) }()
		waitBlocked(t, "WITH gone")
		require.NoError(t, tx.Commit(ctx))
		err = wait(t, errs, "the blocked release")
		require.ErrorIs(t, err, idempotent.ErrFenced)
		assert.Contains(t, err.Error(), "held by another invocation")
		got, err := store.Get(ctx, rec.ID, now)
		require.NoError(t, err)
		require.NotNil(t, got)
		assert.Equal(t, "taker", got.Owner)
	})
}

// TestFenceReasons: a fenced completion or release says why, without revealing tokens.
func TestFenceReasons(t *testing.T) {
	ctx := context.Background()
	store := pgstore.New(pgtest.Pool(t), newTable(t))
	now := time.Now().Truncate(time.Second)
	done := func(r idempotent.Record) idempotent.Record {
		r.Status, r.Response, r.LeaseEnd = idempotent.StatusCompleted, []byte("r"), time.Time{}
		return r
	}
	held := record(now, time.Minute)
	_, err := store.Claim(ctx, idempotent.Claim{Record: held, Now: now})
	require.NoError(t, err)
	completed := record(now, time.Minute)
	_, err = store.Claim(ctx, idempotent.Claim{Record: completed, Now: now})
	require.NoError(t, err)
	require.NoError(t, store.Complete(ctx, done(completed), nil))

	stranger := held
	stranger.Owner = "stranger"
	absent := record(now, time.Minute)
	for name, tc := range map[string]struct {
		rec  idempotent.Record
		want string
	}{
		"Absent":        {absent, "record absent"},
		"Completed":     {completed, "record is COMPLETED"},
		"AnotherHolder": {stranger, "record held by another invocation"},
	} {
		t.Run(name, func(t *testing.T) {
			err := store.Complete(ctx, done(tc.rec), nil)
			require.ErrorIs(t, err, idempotent.ErrFenced)
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), held.Owner)
			if name != "Absent" {
				err = store.Release(ctx, tc.rec.ID, tc.rec.Owner)
				require.ErrorIs(t, err, idempotent.ErrFenced)
				assert.Contains(t, err.Error(), tc.want)
			}
		})
	}
}
