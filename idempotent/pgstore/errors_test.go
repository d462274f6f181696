package pgstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/pgstore"
	"github.com/idemkit/idemkit/internal/pglocal/pgtest"
)

// TestPermanentStoreErrors: a missing table and a missing privilege wrap ErrPermanent from every call (HTTP 500,
// no retry), and the engine refuses the request without running the handler.
func TestPermanentStoreErrors(t *testing.T) {
	ctx := context.Background()
	opt := newTable(t)
	o := pgstore.Options{}
	opt(&o)

	// A role that may log in but holds no privilege on the table.
	role := pgtest.UniqueName(t, "r")
	_, err := pgtest.Pool(t).Exec(ctx, `CREATE ROLE `+pgx.Identifier{role}.Sanitize()+` LOGIN`)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = pgtest.Pool(t).Exec(ctx, `DROP ROLE `+pgx.Identifier{role}.Sanitize()) })
	unprivileged := pgtest.NewPool(t, func(c *pgxpool.Config) { c.ConnConfig.User = role })

	for name, tc := range map[string]struct {
		store *pgstore.Store
		code  string
	}{
		"UndefinedTable":        {pgstore.New(pgtest.Pool(t), func(o *pgstore.Options) { o.Table = "no_such_table" }), "42P01"},
		"InsufficientPrivilege": {pgstore.New(unprivileged, opt), "42501"},
	} {
		t.Run(name, func(t *testing.T) {
			now := time.Now()
			rec := record(now, time.Minute)
			_, err := tc.store.Claim(ctx, idempotent.Claim{Record: rec, Now: now})
			assertPermanent(t, err, tc.code)
			_, err = tc.store.Get(ctx, rec.ID, now)
			assertPermanent(t, err, tc.code)
			rec.Status, rec.Response = idempotent.StatusCompleted, []byte("r")
			assertPermanent(t, tc.store.Complete(ctx, rec, nil), tc.code)
			assertPermanent(t, tc.store.Complete(ctx, rec, []idempotent.Effect{pgstore.Statement{SQL: "SELECT 1"}}), tc.code)
			assertPermanent(t, tc.store.Release(ctx, rec.ID, rec.Owner), tc.code)

			var runs int
			_, err = idempotent.Run(ctx, idempotent.New(tc.store), request("perm", `{}`), idempotent.Spec[resp]{},
				func(context.Context) (resp, error) { runs++; return resp{}, nil })
			var se *idempotent.StoreError
			require.ErrorAs(t, err, &se)
			assertPermanent(t, err, tc.code)
			assert.Zero(t, runs)
		})
	}
}

func assertPermanent(t *testing.T, err error, code string) {
	t.Helper()
	require.ErrorIs(t, err, idempotent.ErrPermanent)
	assert.Contains(t, err.Error(), "SQLSTATE "+code)
}

// TestTransientStoreErrors: an unreachable server is not permanent: the engine answers 503 and a retry may succeed.
func TestTransientStoreErrors(t *testing.T) {
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig("postgres://postgres@127.0.0.1:1/postgres?sslmode=disable&connect_timeout=5")
	require.NoError(t, err)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	defer pool.Close()
	store := pgstore.New(pool)
	now := time.Now()
	_, err = store.Claim(ctx, idempotent.Claim{Record: record(now, time.Minute), Now: now})
	require.Error(t, err)
	assert.NotErrorIs(t, err, idempotent.ErrPermanent)
}

// TestCompleteRefusesAnInProgressRecord: Complete writes COMPLETED records only.
func TestCompleteRefusesAnInProgressRecord(t *testing.T) {
	store := pgstore.New(pgtest.Pool(t), newTable(t))
	now := time.Now()
	rec := record(now, time.Minute)
	_, err := store.Claim(context.Background(), idempotent.Claim{Record: rec, Now: now})
	require.NoError(t, err)
	require.Error(t, store.Complete(context.Background(), rec, nil))
	got, err := store.Get(context.Background(), rec.ID, now)
	require.NoError(t, err)
	assert.Equal(t, idempotent.StatusInProgress, got.Status)
}
