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

// business creates the handler's own tables, payments and accounts, next to the idempotency table, and returns
// their quoted names.
func business(t *testing.T) (payments, accounts string) {
	t.Helper()
	ctx := context.Background()
	payments = pgx.Identifier{pgtest.UniqueName(t, "pay")}.Sanitize()
	accounts = pgx.Identifier{pgtest.UniqueName(t, "acct")}.Sanitize()
	for _, ddl := range []string{
		`CREATE TABLE ` + payments + ` (id text PRIMARY KEY, amount integer NOT NULL CHECK (amount > 0))`,
		`CREATE TABLE ` + accounts + ` (id text PRIMARY KEY, balance integer NOT NULL)`,
		`INSERT INTO ` + accounts + ` VALUES ('acct-1', 100)`,
	} {
		_, err := pgtest.Pool(t).Exec(ctx, ddl)
		require.NoError(t, err, ddl)
	}
	t.Cleanup(func() { _, _ = pgtest.Pool(t).Exec(ctx, `DROP TABLE `+payments+`, `+accounts) })
	return payments, accounts
}

func count(t *testing.T, table, where string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, pgtest.Pool(t).QueryRow(context.Background(), `SELECT count(*) FROM `+table+` WHERE `+where, args...).Scan(&n))
	return n
}

func balance(t *testing.T, accounts string) int {
	t.Helper()
	var b int
	require.NoError(t, pgtest.Pool(t).QueryRow(context.Background(), `SELECT balance FROM `+accounts+` WHERE id = 'acct-1'`).Scan(&b))
	return b
}

// pay is a handler that records a payment and debits the account, both as effects: the debit only if the balance
// covers it (ExecRows 1: a conditional write).
func pay(payments, accounts, id string, amount int, runs *atomic.Int32) func(context.Context) (resp, error) {
	return func(ctx context.Context) (resp, error) {
		runs.Add(1)
		if !pgstore.Exec(ctx, `INSERT INTO `+payments+` (id, amount) VALUES ($1, $2)`, id, amount) ||
			!pgstore.ExecRows(ctx, 1, `UPDATE `+accounts+` SET balance = balance - $1 WHERE id = 'acct-1' AND balance >= $1`, amount) {
			return resp{}, errors.New("not in an idempotent execution")
		}
		return resp{Status: 201, Body: id}, nil
	}
}

func TestEffectsCommitWithTheRecord(t *testing.T) {
	payments, accounts := business(t)
	pool, stmts := countingPool(t)
	store := pgstore.New(pool, newTable(t))
	engine := idempotent.New(store)
	ctx := context.Background()
	var runs atomic.Int32

	res, err := idempotent.Run(ctx, engine, request("pay-1", `{"amount":30}`), idempotent.Spec[resp]{}, pay(payments, accounts, "p1", 30, &runs))
	require.NoError(t, err)
	assert.False(t, res.Replayed())
	assert.Equal(t, map[string]int{"claimed": 1, "begin": 1, "done": 1, "insert": 1, "update": 1, "commit": 1}, stmts.take(),
		"claim; then BEGIN, the fence and both effects in one batch, COMMIT")
	assert.Equal(t, 1, count(t, payments, "id = 'p1'"))
	assert.Equal(t, 70, balance(t, accounts))

	res, err = idempotent.Run(ctx, engine, request("pay-1", `{"amount":30}`), idempotent.Spec[resp]{}, pay(payments, accounts, "p1", 30, &runs))
	require.NoError(t, err)
	assert.True(t, res.Replayed())
	assert.Equal(t, map[string]int{"claimed": 1}, stmts.take(), "a duplicate is one statement and writes nothing")
	assert.Equal(t, int32(1), runs.Load())
	assert.Equal(t, 70, balance(t, accounts), "debited once")
}

// TestEffectsInvisibleUntilCompleted: while the completion's transaction is open, another connection sees neither
// the effects nor a COMPLETED record, and a duplicate waits for the transaction; after the commit both are
// visible.
func TestEffectsInvisibleUntilCompleted(t *testing.T) {
	payments, accounts := business(t)
	store := pgstore.New(pgtest.Pool(t), newTable(t))
	engine := idempotent.New(store)
	ctx := context.Background()
	var runs atomic.Int32
	inTx, proceed := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := idempotent.Run(ctx, engine, request("pay-2", `{}`), idempotent.Spec[resp]{}, func(ctx context.Context) (resp, error) {
			if _, err := pay(payments, accounts, "p2", 10, &runs)(ctx); err != nil {
				return resp{}, err
			}
			pgstore.AddFunc(ctx, func(ctx context.Context, tx pgx.Tx) error {
				close(inTx)
				select {
				case <-proceed:
					return nil
				case <-time.After(time.Minute):
					return errors.New("the test did not let the transaction proceed")
				}
			})
			return resp{Status: 201}, nil
		})
		done <- err
	}()
	wait(t, inTx, "the completion's transaction to run the function effect")
	assert.Equal(t, 0, count(t, payments, "id = 'p2'"), "the payment is not visible before the commit")
	assert.Equal(t, 100, balance(t, accounts), "nor the debit")
	rec, err := store.Get(ctx, scope.ID("pay-2"), time.Now())
	require.NoError(t, err)
	require.NotNil(t, rec)
	assert.Equal(t, idempotent.StatusInProgress, rec.Status, "nor the COMPLETED record")

	// A duplicate now waits for the completion's row lock, then answers as its snapshot saw the record.
	dup := make(chan error, 1)
	go func() {
		_, err := idempotent.Run(ctx, engine, request("pay-2", `{}`), idempotent.Spec[resp]{}, handler(&runs, "twice"))
		dup <- err
	}()
	waitBlocked(t, "WITH claimed")
	close(proceed)
	require.NoError(t, wait(t, done, "the request"))
	require.ErrorIs(t, wait(t, dup, "the duplicate"), idempotent.ErrInProgress)
	assert.Equal(t, int32(1), runs.Load(), "the duplicate did not run the handler")
	assert.Equal(t, 1, count(t, payments, "id = 'p2'"))
	assert.Equal(t, 90, balance(t, accounts))
	rec, err = store.Get(ctx, scope.ID("pay-2"), time.Now())
	require.NoError(t, err)
	assert.Equal(t, idempotent.StatusCompleted, rec.Status)
}

// TestFailedEffectCommitsNothingAndFreesTheKey: when an effect's condition fails, neither the other effects nor the
// record commit, the request fails with ErrEffectFailed, and the key is free for a retry that runs the handler
// again.
func TestFailedEffectCommitsNothingAndFreesTheKey(t *testing.T) {
	payments, accounts := business(t)
	_, err := pgtest.Pool(t).Exec(context.Background(), `INSERT INTO `+payments+` VALUES ('taken', 1)`)
	require.NoError(t, err)
	store := pgstore.New(pgtest.Pool(t), newTable(t))
	engine := idempotent.New(store)
	ctx := context.Background()

	cases := map[string]struct {
		handler func(runs *atomic.Int32) func(context.Context) (resp, error)
		want    string
	}{
		"UniqueViolation": {func(runs *atomic.Int32) func(context.Context) (resp, error) {
			return pay(payments, accounts, "taken", 5, runs)
		}, "23505"},
		"CheckViolation": {func(runs *atomic.Int32) func(context.Context) (resp, error) {
			return pay(payments, accounts, "negative", -5, runs)
		}, "23514"},
		"ConditionalUpdateMissed": {func(runs *atomic.Int32) func(context.Context) (resp, error) {
			return pay(payments, accounts, "too-much", 1000, runs) // the insert succeeds, the debit affects no row
		}, "affected 0 rows, want 1"},
		"FunctionSaysNo": {func(runs *atomic.Int32) func(context.Context) (resp, error) {
			return func(ctx context.Context) (resp, error) {
				if _, err := pay(payments, accounts, "refused", 5, runs)(ctx); err != nil {
					return resp{}, err
				}
				pgstore.AddFunc(ctx, func(context.Context, pgx.Tx) error { return errors.New("limit exceeded") })
				return resp{Status: 201}, nil
			}
		}, "limit exceeded"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			key := "fail-" + name
			var runs atomic.Int32
			_, err := idempotent.Run(ctx, engine, request(key, `{}`), idempotent.Spec[resp]{}, tc.handler(&runs))
			require.ErrorIs(t, err, idempotent.ErrEffectFailed)
			assert.Contains(t, err.Error(), tc.want)
			assert.Equal(t, 100, balance(t, accounts), "no debit committed")
			assert.Equal(t, 1, count(t, payments, "true"), "no payment committed")
			rec, err := store.Get(ctx, scope.ID(key), time.Now())
			require.NoError(t, err)
			assert.Nil(t, rec, "the key is free")

			res, err := idempotent.Run(ctx, engine, request(key, `{}`), idempotent.Spec[resp]{}, handler(&runs, "retried"))
			require.NoError(t, err)
			assert.False(t, res.Replayed())
			assert.Equal(t, int32(2), runs.Load(), "the retry ran the handler again")
		})
	}
}

// TestPermanentEffectErrorCommitsNothing: an effect PostgreSQL refuses as malformed (a syntax error, an unknown
// table) fails with ErrPermanent (HTTP 500, no retry) and commits nothing; the key is released.
func TestPermanentEffectErrorCommitsNothing(t *testing.T) {
	payments, accounts := business(t)
	store := pgstore.New(pgtest.Pool(t), newTable(t))
	engine := idempotent.New(store)
	ctx := context.Background()
	for name, sql := range map[string]string{
		"SyntaxError":    `INSERT INTO ` + payments + ` VALUS ('x', 1)`,
		"UndefinedTable": `INSERT INTO no_such_table VALUES ('x', 1)`,
	} {
		t.Run(name, func(t *testing.T) {
			var runs atomic.Int32
			_, err := idempotent.Run(ctx, engine, request("perm-"+name, `{}`), idempotent.Spec[resp]{}, func(ctx context.Context) (resp, error) {
				runs.Add(1)
				pgstore.Exec(ctx, `UPDATE `+accounts+` SET balance = 0`)
				pgstore.Exec(ctx, sql)
				return resp{Status: 201}, nil
			})
			require.ErrorIs(t, err, idempotent.ErrPermanent)
			assert.Equal(t, int32(1), runs.Load())
			assert.Equal(t, 100, balance(t, accounts), "nothing committed")
			rec, err := store.Get(ctx, scope.ID("perm-"+name), time.Now())
			require.NoError(t, err)
			assert.Nil(t, rec, "released")
		})
	}
}

// TestDeferredConstraintFailsAtCommit: a deferred constraint is checked by COMMIT; its violation is an effect
// failure like any other.
func TestDeferredConstraintFailsAtCommit(t *testing.T) {
	ctx := context.Background()
	table := pgx.Identifier{pgtest.UniqueName(t, "deferred")}.Sanitize()
	_, err := pgtest.Pool(t).Exec(ctx, `CREATE TABLE `+table+` (id text, CONSTRAINT one UNIQUE (id) DEFERRABLE INITIALLY DEFERRED)`)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = pgtest.Pool(t).Exec(ctx, `DROP TABLE `+table) })
	store := pgstore.New(pgtest.Pool(t), newTable(t))
	engine := idempotent.New(store)
	_, err = idempotent.Run(ctx, engine, request("deferred", `{}`), idempotent.Spec[resp]{}, func(ctx context.Context) (resp, error) {
		pgstore.Exec(ctx, `INSERT INTO `+table+` VALUES ('dup')`)
		pgstore.Exec(ctx, `INSERT INTO `+table+` VALUES ('dup')`)
		return resp{Status: 201}, nil
	})
	require.ErrorIs(t, err, idempotent.ErrEffectFailed)
	assert.Contains(t, err.Error(), "commit")
	assert.Equal(t, 0, count(t, table, "true"))
}

// TestFencedCompletionWithEffectsCommitsNothing: a stale invocation whose key was taken over cannot commit its
// effects either.
func TestFencedCompletionWithEffectsCommitsNothing(t *testing.T) {
	payments, _ := business(t)
	store := pgstore.New(pgtest.Pool(t), newTable(t))
	ctx := context.Background()
	now := time.Now().Truncate(time.Second)
	stale := record(now, time.Second)
	_, err := store.Claim(ctx, idempotent.Claim{Record: stale, Now: now})
	require.NoError(t, err)
	fresh := record(now, time.Minute)
	fresh.ID = stale.ID
	existing, err := store.Claim(ctx, idempotent.Claim{Record: fresh, Now: stale.LeaseEnd, Takeover: true})
	require.NoError(t, err)
	require.Nil(t, existing)

	done := stale
	done.Status, done.Response = idempotent.StatusCompleted, []byte("stale")
	called := false
	err = store.Complete(ctx, done, []idempotent.Effect{
		pgstore.Statement{SQL: `INSERT INTO ` + payments + ` VALUES ('stale', 1)`},
		pgstore.Func(func(context.Context, pgx.Tx) error { called = true; return nil }),
	})
	require.ErrorIs(t, err, idempotent.ErrFenced)
	assert.False(t, called, "a fenced completion runs no function effect")
	assert.Equal(t, 0, count(t, payments, "true"))
	got, err := store.Get(ctx, stale.ID, now)
	require.NoError(t, err)
	assert.Equal(t, fresh.Owner, got.Owner)
	assert.Equal(t, idempotent.StatusInProgress, got.Status)
}

func TestUnsupportedEffects(t *testing.T) {
	store := pgstore.New(pgtest.Pool(t), newTable(t))
	ctx := context.Background()
	now := time.Now().Truncate(time.Second)
	for name, eff := range map[string]idempotent.Effect{
		"Foreign":      struct{}{},
		"NilStatement": (*pgstore.Statement)(nil),
		"EmptySQL":     pgstore.Statement{},
		"NilFunc":      pgstore.Func(nil),
	} {
		t.Run(name, func(t *testing.T) {
			rec := record(now, time.Minute)
			_, err := store.Claim(ctx, idempotent.Claim{Record: rec, Now: now})
			require.NoError(t, err)
			rec.Status, rec.Response = idempotent.StatusCompleted, []byte("r")
			err = store.Complete(ctx, rec, []idempotent.Effect{pgstore.Statement{SQL: "SELECT 1"}, eff})
			require.ErrorIs(t, err, idempotent.ErrUnsupportedEffect)
			got, err := store.Get(ctx, rec.ID, now)
			require.NoError(t, err)
			assert.Equal(t, idempotent.StatusInProgress, got.Status, "nothing written")
		})
	}
	// A pointer to a Statement and a plain function are accepted.
	rec := record(now, time.Minute)
	_, err := store.Claim(ctx, idempotent.Claim{Record: rec, Now: now})
	require.NoError(t, err)
	rec.Status, rec.Response = idempotent.StatusCompleted, []byte("r")
	ran := false
	require.NoError(t, store.Complete(ctx, rec, []idempotent.Effect{
		&pgstore.Statement{SQL: "SELECT 1", Rows: 1},
		func(context.Context, pgx.Tx) error { ran = true; return nil },
	}))
	assert.True(t, ran)
}

// TestTxOptions: Options.TxOptions sets the isolation of the completion's transaction; the default is the
// server's (read committed).
func TestTxOptions(t *testing.T) {
	ctx := context.Background()
	opt := newTable(t)
	for name, tc := range map[string]struct {
		opts pgx.TxOptions
		want string
	}{
		"Default":      {pgx.TxOptions{}, "read committed"},
		"Serializable": {pgx.TxOptions{IsoLevel: pgx.Serializable}, "serializable"},
	} {
		t.Run(name, func(t *testing.T) {
			store := pgstore.New(pgtest.Pool(t), opt, func(o *pgstore.Options) { o.TxOptions = tc.opts })
			assert.Equal(t, tc.opts, store.Options().TxOptions)
			var isolation string
			_, err := idempotent.Run(ctx, idempotent.New(store), request("iso-"+name, `{}`), idempotent.Spec[resp]{}, func(ctx context.Context) (resp, error) {
				pgstore.AddFunc(ctx, func(ctx context.Context, tx pgx.Tx) error {
					return tx.QueryRow(ctx, `SELECT current_setting('transaction_isolation')`).Scan(&isolation)
				})
				return resp{Status: 201}, nil
			})
			require.NoError(t, err)
			assert.Equal(t, tc.want, isolation)
		})
	}
	assert.Equal(t, pgstore.DefaultTable, pgstore.New(pgtest.Pool(t)).Options().Table)
}

// TestEffectsInEveryQueryMode: the batch of the fence and the Statement effects, and their row counts, work in
// each of pgx's query modes, those without named prepared statements (RDS Proxy, PgBouncer) included.
func TestEffectsInEveryQueryMode(t *testing.T) {
	ctx := context.Background()
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeCacheDescribe, pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol} {
		t.Run(mode.String(), func(t *testing.T) {
			payments, accounts := business(t)
			pool := pgtest.NewPool(t, func(c *pgxpool.Config) { c.ConnConfig.DefaultQueryExecMode = mode })
			store := pgstore.New(pool, newTable(t))
			engine := idempotent.New(store)
			var runs atomic.Int32

			res, err := idempotent.Run(ctx, engine, request("ok", `{}`), idempotent.Spec[resp]{}, pay(payments, accounts, "p-ok", 60, &runs))
			require.NoError(t, err)
			assert.Equal(t, "p-ok", res.Value.Body)
			assert.Equal(t, 40, balance(t, accounts))

			_, err = idempotent.Run(ctx, engine, request("short", `{}`), idempotent.Spec[resp]{}, pay(payments, accounts, "p-short", 60, &runs))
			require.ErrorIs(t, err, idempotent.ErrEffectFailed, "the debit affects no row")
			assert.Equal(t, 40, balance(t, accounts))
			assert.Equal(t, 1, count(t, payments, "true"))
			got, err := store.Get(ctx, scope.ID("short"), time.Now())
			require.NoError(t, err)
			assert.Nil(t, got, "the key is free")
		})
	}
}
