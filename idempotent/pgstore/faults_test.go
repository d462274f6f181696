package pgstore_test

import (
	"context"
	"errors"
	"sync/atomic"
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

// Faults: a connection killed mid-transaction or while a statement waits, a statement timeout, a server restart.
// In every case the handler runs once, and whatever committed committed whole.

// TestConnectionKilledMidCompletion: the completion's backend is terminated (pg_terminate_backend) inside its
// transaction, after the fence and the statement effects ran. Nothing of that transaction commits; the engine
// retries the completion on a new connection, which commits the record and the effects once.
func TestConnectionKilledMidCompletion(t *testing.T) {
	payments, accounts := business(t)
	store := pgstore.New(pgtest.NewPool(t, nil), newTable(t))
	engine := idempotent.New(store)
	ctx := context.Background()
	var runs, attempts atomic.Int32
	handler := func(ctx context.Context) (resp, error) {
		if _, err := pay(payments, accounts, "killed", 10, &runs)(ctx); err != nil {
			return resp{}, err
		}
		pgstore.AddFunc(ctx, func(ctx context.Context, tx pgx.Tx) error {
			if attempts.Add(1) == 1 {
				var ok bool
				if err := pgtest.Pool(t).QueryRow(ctx, `SELECT pg_terminate_backend($1)`, tx.Conn().PgConn().PID()).Scan(&ok); err != nil || !ok {
					return errors.New("could not terminate the backend")
				}
			}
			_, err := tx.Exec(ctx, `SELECT 1`)
			return err
		})
		return resp{Status: 201, Body: "paid"}, nil
	}
	res, err := idempotent.Run(ctx, engine, request("kill-mid-tx", `{}`), idempotent.Spec[resp]{}, handler)
	require.NoError(t, err)
	assert.Equal(t, "paid", res.Value.Body)
	assert.Equal(t, int32(2), attempts.Load(), "the killed transaction was retried once")
	assert.Equal(t, int32(1), runs.Load(), "the handler ran once")
	assert.Equal(t, 1, count(t, payments, "id = 'killed'"), "the payment committed once")
	assert.Equal(t, 90, balance(t, accounts), "debited once")

	res, err = idempotent.Run(ctx, engine, request("kill-mid-tx", `{}`), idempotent.Spec[resp]{}, handler)
	require.NoError(t, err)
	assert.True(t, res.Replayed())
	assert.Equal(t, int32(1), runs.Load())
}

// TestConnectionKilledDuringClaim: the claim's backend is terminated while the claim waits for a row lock. The
// request fails closed (a store error, 503) without running the handler; a retry runs it once.
func TestConnectionKilledDuringClaim(t *testing.T) {
	opt := newTable(t)
	o := pgstore.Options{}
	opt(&o)
	store := pgstore.New(pgtest.NewPool(t, nil), opt)
	engine := idempotent.New(store)
	ctx := context.Background()
	req := request("kill-claim", `{}`)

	// An expired record, locked by a transaction of the test: the claim's upsert waits for it.
	old := record(time.Now().Add(-3*time.Hour), time.Minute)
	old.ID = req.Scope.ID(req.Key)
	_, err := store.Claim(ctx, idempotent.Claim{Record: old, Now: old.LeaseEnd.Add(-time.Minute)})
	require.NoError(t, err)
	tx, err := pgtest.Pool(t).Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	_, err = tx.Exec(ctx, `SELECT 1 FROM `+pgx.Identifier{o.Table}.Sanitize()+` WHERE id = $1 FOR UPDATE`, old.ID)
	require.NoError(t, err)

	var runs atomic.Int32
	done := make(chan error, 1)
	go func() {
		_, err := idempotent.Run(ctx, engine, req, idempotent.Spec[resp]{}, handler(&runs, "x"))
		done <- err
	}()
	waitBlocked(t, "WITH claimed")
	var killed int
	require.NoError(t, pgtest.Pool(t).QueryRow(ctx,
		`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'WITH claimed%'`).Scan(&killed))
	require.Equal(t, 1, killed)
	err = wait(t, done, "the killed claim")
	var se *idempotent.StoreError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, "claim", se.Op)
	assert.NotErrorIs(t, err, idempotent.ErrPermanent, "a lost connection is transient (503)")
	assert.Equal(t, int32(0), runs.Load(), "no execution without a claim")

	require.NoError(t, tx.Rollback(ctx))
	res, err := idempotent.Run(ctx, engine, req, idempotent.Spec[resp]{}, handler(&runs, "x"))
	require.NoError(t, err)
	assert.False(t, res.Replayed())
	assert.Equal(t, int32(1), runs.Load())
}

// TestStatementTimeoutDuringCompletion: the completion waits on a row lock until statement_timeout cancels it,
// on every retry within the completion budget. Nothing of the transaction commits, the request fails closed,
// and a duplicate meets the claim (409 in progress) rather than running the handler again.
func TestStatementTimeoutDuringCompletion(t *testing.T) {
	payments, accounts := business(t)
	opt := newTable(t)
	o := pgstore.Options{}
	opt(&o)
	pool := pgtest.NewPool(t, func(c *pgxpool.Config) { c.ConnConfig.RuntimeParams["statement_timeout"] = "300ms" })
	store := pgstore.New(pool, opt)
	events := make(chan idempotent.Event, 2)
	engine := idempotent.New(store, idempotent.WithCompletionTimeout(3*time.Second), idempotent.WithLease(time.Hour),
		idempotent.WithOutcomeHook(func(_ context.Context, ev idempotent.Event) { events <- ev }))
	ctx := context.Background()
	req := request("timeout", `{}`)

	tx, err := pgtest.Pool(t).Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	var runs atomic.Int32
	_, err = idempotent.Run(ctx, engine, req, idempotent.Spec[resp]{}, func(ctx context.Context) (resp, error) {
		// Lock the claimed record from another transaction, as a long-running statement would.
		if _, err := tx.Exec(ctx, `SELECT 1 FROM `+pgx.Identifier{o.Table}.Sanitize()+` WHERE id = $1 FOR UPDATE`, req.Scope.ID(req.Key)); err != nil {
			return resp{}, err
		}
		return pay(payments, accounts, "timeout", 10, &runs)(ctx)
	})
	var se *idempotent.StoreError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, "complete", se.Op)
	ev := wait(t, events, "the request's event")
	// The completion's attempts and then the release (each within the 3 s budget) were cancelled by the 300 ms
	// statement_timeout, a tenth of the budget so that a loaded machine still meets it first; the last completion
	// attempt may end on the budget instead.
	require.Error(t, ev.StoreErr)
	assert.Contains(t, ev.StoreErr.Error(), "SQLSTATE 57014", "cancelled by statement_timeout")
	assert.Equal(t, 0, count(t, payments, "true"), "no effect committed")
	assert.Equal(t, 100, balance(t, accounts))
	require.NoError(t, tx.Rollback(ctx))

	_, err = idempotent.Run(ctx, engine, req, idempotent.Spec[resp]{}, handler(&runs, "again"))
	require.ErrorIs(t, err, idempotent.ErrInProgress, "the claim stays until its lease ends: no second execution")
	assert.Equal(t, int32(1), runs.Load())
}

// TestServerRestartDuringCompletion: the server restarts (fast shutdown: every connection closed, open
// transactions rolled back) inside the completion's transaction. The engine retries the completion once the
// server is back, and the record and the effects commit once.
func TestServerRestartDuringCompletion(t *testing.T) {
	payments, accounts := business(t)
	store := pgstore.New(pgtest.NewPool(t, nil), newTable(t))
	engine := idempotent.New(store, idempotent.WithCompletionTimeout(time.Minute))
	ctx := context.Background()
	var runs, attempts atomic.Int32
	handler := func(ctx context.Context) (resp, error) {
		if _, err := pay(payments, accounts, "restart", 10, &runs)(ctx); err != nil {
			return resp{}, err
		}
		pgstore.AddFunc(ctx, func(ctx context.Context, tx pgx.Tx) error {
			if attempts.Add(1) == 1 {
				if err := pgtest.Instance(t).Restart(ctx); err != nil {
					return err
				}
				pgtest.Pool(t).Reset() // the shared pool's connections died with the old server
			}
			return nil
		})
		return resp{Status: 201, Body: "paid"}, nil
	}
	res, err := idempotent.Run(ctx, engine, request("restart", `{}`), idempotent.Spec[resp]{}, handler)
	require.NoError(t, err)
	assert.False(t, res.Replayed())
	assert.Equal(t, int32(2), attempts.Load(), "the transaction cut by the restart was retried")
	assert.Equal(t, int32(1), runs.Load())
	assert.Equal(t, 1, count(t, payments, "id = 'restart'"))
	assert.Equal(t, 90, balance(t, accounts))

	res, err = idempotent.Run(ctx, engine, request("restart", `{}`), idempotent.Spec[resp]{}, handler)
	require.NoError(t, err)
	assert.True(t, res.Replayed())
	assert.Equal(t, int32(1), runs.Load())
}
