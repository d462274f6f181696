package pgstore_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/pgstore"
	"github.com/idemkit/idemkit/internal/pglocal/pgtest"
)

// TestSweeperDeletesOnlyExpiredRowsInBatches: records expired at the sweep's instant (expiration at or before it)
// go, in DELETEs of at most BatchSize rows; live records, INPROGRESS with an ended lease included, stay.
func TestSweeperDeletesOnlyExpiredRowsInBatches(t *testing.T) {
	ctx := context.Background()
	opt := newTable(t)
	store := pgstore.New(pgtest.Pool(t), opt)
	now := time.Now().Truncate(time.Second)

	claim := func(expiresAt time.Time, complete bool) string {
		rec := record(expiresAt.Add(-time.Hour), time.Minute)
		rec.ExpiresAt = expiresAt
		_, err := store.Claim(ctx, idempotent.Claim{Record: rec, Now: expiresAt.Add(-time.Hour)})
		require.NoError(t, err)
		if complete {
			rec.Status, rec.Response, rec.LeaseEnd = idempotent.StatusCompleted, []byte("r"), time.Time{}
			require.NoError(t, store.Complete(ctx, rec, nil))
		}
		return rec.ID
	}
	var expired, live []string
	for i := range 7 {
		expired = append(expired, claim(now.Add(-time.Duration(i)*time.Minute), i%2 == 0)) // the first at exactly now
	}
	for i := range 3 {
		live = append(live, claim(now.Add(time.Duration(i+1)*time.Microsecond), i%2 == 0))
	}

	pool, stmts := countingPool(t)
	sweeper := pgstore.NewSweeper(pool, pgstore.SweepOptions{BatchSize: 3, MaxBatches: 2}, opt)
	n, err := sweeper.Sweep(ctx, now)
	require.NoError(t, err)
	assert.Equal(t, int64(6), n, "two full batches, then the bound")
	assert.Equal(t, map[string]int{"delete": 2}, stmts.take())

	sweeper = pgstore.NewSweeper(pool, pgstore.SweepOptions{BatchSize: 3}, opt)
	n, err = sweeper.Sweep(ctx, now)
	require.NoError(t, err)
	assert.Equal(t, int64(1), n, "the rest; a short batch ends the sweep")
	assert.Equal(t, map[string]int{"delete": 1}, stmts.take())

	for _, id := range expired {
		assert.Equal(t, 0, rawCount(t, opt, id), "expired record %s deleted", id)
	}
	for _, id := range live {
		assert.Equal(t, 1, rawCount(t, opt, id), "live record %s kept", id)
	}
	n, err = sweeper.Sweep(ctx, now)
	require.NoError(t, err)
	assert.Zero(t, n)
}

func rawCount(t *testing.T, opt func(*pgstore.Options), id string) int {
	o := pgstore.Options{}
	opt(&o)
	return count(t, pgx.Identifier{o.Table}.Sanitize(), "id = $1", id)
}

// TestSweepUsesTheExpirationIndex: the sweeper's statement, as it sends it, reads the expiration index and then
// the rows it deletes by primary key, so a sweep costs the rows it deletes, not the table's size nor the number of
// expired rows. Sequential scans are priced out, as the planner would on a large table.
func TestSweepUsesTheExpirationIndex(t *testing.T) {
	ctx := context.Background()
	opt := newTable(t)
	o := pgstore.Options{}
	opt(&o)
	pool, stmts := countingPool(t)
	_, err := pgstore.NewSweeper(pool, pgstore.SweepOptions{BatchSize: 10}, opt).Sweep(ctx, time.Now())
	require.NoError(t, err)
	sweepSQL := stmts.last

	var index string
	require.NoError(t, pgtest.Pool(t).QueryRow(ctx,
		`SELECT indexname FROM pg_indexes WHERE tablename = $1 AND indexdef LIKE '%(expiration)%'`, o.Table).Scan(&index))
	conn, err := pgtest.Pool(t).Acquire(ctx)
	require.NoError(t, err)
	defer conn.Release()
	_, err = conn.Exec(ctx, `SET enable_seqscan = off`)
	require.NoError(t, err)
	defer func() { _, _ = conn.Exec(ctx, `RESET enable_seqscan`) }()
	rows, err := conn.Query(ctx, `EXPLAIN `+sweepSQL, time.Now(), 10)
	require.NoError(t, err)
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	plan := strings.Join(lines, "\n")
	assert.Contains(t, plan, "Index Scan using "+index, plan)
	assert.Contains(t, plan, "_pkey", "the deleted rows are found by primary key\n%s", plan)
	assert.NotContains(t, plan, "Bitmap Heap Scan", "no read of every expired row\n%s", plan)
}

func TestSweepStopsOnContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n, err := pgstore.NewSweeper(pgtest.Pool(t), pgstore.SweepOptions{}, newTable(t)).Sweep(ctx, time.Now())
	require.ErrorIs(t, err, context.Canceled)
	assert.Zero(t, n)
}
