package pgstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/idemkit/idemkit/idempotent"
)

// Statement is an effect: one SQL statement that commits in the same transaction as the completed record, or not
// at all. Hand it to the engine with Exec or ExecRows (or idempotent.AddEffect with a Statement or *Statement).
type Statement struct {
	// SQL is the statement, with $1, $2, ... placeholders.
	SQL string
	// Args are the placeholders' values, encoded by pgx.
	Args []any
	// Rows, when positive, is the number of rows the statement must affect (its command tag's count) for the
	// transaction to commit: 1 makes "UPDATE accounts SET balance = balance - $1 WHERE id = $2 AND balance >= $1"
	// or "INSERT ... ON CONFLICT DO NOTHING" a conditional write, as a DynamoDB condition expression would. Another
	// count fails the completion with an error wrapping idempotent.ErrEffectFailed. Zero accepts any count.
	Rows int64
}

// Func is an effect: a function run inside the completion's transaction, after the Statement effects, for writes
// that need to read first or to decide. Its error rolls the transaction back. An error wrapping
// idempotent.ErrEffectFailed, an integrity-constraint violation (SQLSTATE class 23), an exception raised by
// PL/pgSQL (class P0) or any error of its own (not from PostgreSQL or the connection) fails the completion with
// ErrEffectFailed: nothing commits and the key is freed. A lost connection or a serialization failure is
// transient: the engine retries the completion, so fn may run more than once, each time in a new transaction of
// which at most one commits. Write through tx, never through the pool: another connection would not be part of
// the transaction, and with a small pool it may wait for the very connection the transaction holds.
type Func func(ctx context.Context, tx pgx.Tx) error

// Exec asks the engine to run sql with args in the same transaction as the completed record (see
// idempotent.AddEffect). It returns false outside an idempotent execution; the caller must then write on its own.
func Exec(ctx context.Context, sql string, args ...any) bool {
	return idempotent.AddEffect(ctx, Statement{SQL: sql, Args: args})
}

// ExecRows is Exec for a conditional write: the statement must affect exactly rows rows (rows > 0), or nothing
// commits and the request fails with an error wrapping idempotent.ErrEffectFailed.
func ExecRows(ctx context.Context, rows int64, sql string, args ...any) bool {
	return idempotent.AddEffect(ctx, Statement{SQL: sql, Args: args, Rows: rows})
}

// AddFunc asks the engine to run fn in the completion's transaction (see Func).
func AddFunc(ctx context.Context, fn Func) bool {
	return idempotent.AddEffect(ctx, fn)
}

// split sorts the effects into statements and functions, refusing any other type before anything is sent.
func split(effects []idempotent.Effect) (stmts []Statement, funcs []Func, err error) {
	for i, e := range effects {
		switch v := e.(type) {
		case Statement:
			stmts = append(stmts, v)
		case *Statement:
			if v == nil {
				return nil, nil, fmt.Errorf("effect %d: nil *pgstore.Statement: %w", i, idempotent.ErrUnsupportedEffect)
			}
			stmts = append(stmts, *v)
		case Func:
			funcs = append(funcs, v)
		case func(context.Context, pgx.Tx) error:
			funcs = append(funcs, v)
		default:
			return nil, nil, fmt.Errorf("effect %d: %w: %T (want pgstore.Statement or pgstore.Func)", i, idempotent.ErrUnsupportedEffect, e)
		}
		if n := len(funcs); n > 0 && funcs[n-1] == nil {
			return nil, nil, fmt.Errorf("effect %d: nil pgstore.Func: %w", i, idempotent.ErrUnsupportedEffect)
		}
		if n := len(stmts); n > 0 && stmts[n-1].SQL == "" {
			return nil, nil, fmt.Errorf("effect %d: empty SQL: %w", i, idempotent.ErrUnsupportedEffect)
		}
	}
	return stmts, funcs, nil
}

// completeTx writes the completed record and the effects in one transaction.
func (s *Store) completeTx(ctx context.Context, rec idempotent.Record, effects []idempotent.Effect) (err error) {
	stmts, funcs, err := split(effects)
	if err != nil {
		return fmt.Errorf("pgstore: complete %s: %w", rec.ID, err)
	}
	tx, err := s.db.BeginTx(ctx, s.opts.TxOptions)
	if err != nil {
		return fmt.Errorf("pgstore: complete %s: begin: %w", rec.ID, classify(err))
	}
	committed := false
	defer func() {
		if !committed {
			// With ctx ended, or on a broken connection, pgx closes the connection instead, and the server rolls
			// the transaction back when it sees it gone: either way nothing of it commits, and a dead network
			// cannot hold the completion past its budget.
			_ = tx.Rollback(ctx)
		}
	}()

	// The fence first: its row lock is held until the end, and a fenced completion never runs the functions.
	b := &pgx.Batch{}
	b.Queue(s.sql.complete, s.completeArgs(rec)...)
	for _, st := range stmts {
		b.Queue(st.SQL, st.Args...)
	}
	if err := s.runBatch(ctx, tx, rec, b, stmts); err != nil {
		return err
	}
	for i, fn := range funcs {
		if ferr := fn(ctx, tx); ferr != nil {
			failed, cerr := classifyFunc(ctx, ferr, tx.Conn().IsClosed())
			if failed {
				return fmt.Errorf("pgstore: complete %s: function effect %d failed: %w (%w)", rec.ID, i, idempotent.ErrEffectFailed, ferr)
			}
			return fmt.Errorf("pgstore: complete %s: function effect %d: %w", rec.ID, i, cerr)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		if effectFailed(err) {
			// A deferred constraint, checked at commit.
			return fmt.Errorf("pgstore: complete %s: commit: %w (%w)", rec.ID, idempotent.ErrEffectFailed, err)
		}
		// Whether the commit applied is unknown when its answer was lost; the engine settles it by the owner
		// token (the fence makes a second commit of this completion impossible).
		return fmt.Errorf("pgstore: complete %s: commit: %w", rec.ID, classify(err))
	}
	committed = true
	return nil
}

// runBatch sends the fence and the statements in one round trip and checks each answer in order.
func (s *Store) runBatch(ctx context.Context, tx pgx.Tx, rec idempotent.Record, b *pgx.Batch, stmts []Statement) (err error) {
	br := tx.SendBatch(ctx, b)
	defer func() {
		if cerr := br.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("pgstore: complete %s: %w", rec.ID, classify(cerr))
		}
	}()
	var done bool
	var status *string
	var same *bool
	if err := br.QueryRow().Scan(&done, &status, &same); err != nil {
		return fmt.Errorf("pgstore: complete %s: %w", rec.ID, classify(err))
	}
	if !done {
		return fmt.Errorf("pgstore: complete %s: %s: %w", rec.ID, fenceReason(status, same), idempotent.ErrFenced)
	}
	for i, st := range stmts {
		tag, err := br.Exec()
		if err != nil {
			return statementError(rec.ID, i, err)
		}
		if st.Rows > 0 && tag.RowsAffected() != st.Rows {
			return fmt.Errorf("pgstore: complete %s: statement effect %d affected %d rows, want %d: %w",
				rec.ID, i, tag.RowsAffected(), st.Rows, idempotent.ErrEffectFailed)
		}
	}
	return nil
}

// statementError classifies the failure of statement effect i.
func statementError(id string, i int, err error) error {
	var pe *pgconn.PgError
	switch {
	case effectFailed(err) && errors.As(err, &pe):
		return fmt.Errorf("pgstore: complete %s: statement effect %d failed (SQLSTATE %s%s): %w (%w)",
			id, i, pe.Code, constraint(pe), idempotent.ErrEffectFailed, err)
	case permanent(err):
		return fmt.Errorf("pgstore: complete %s: statement effect %d was refused (check its SQL and arguments): %w (%w)", id, i, idempotent.ErrPermanent, err)
	default:
		return fmt.Errorf("pgstore: complete %s: statement effect %d: %w", id, i, err)
	}
}

func constraint(pe *pgconn.PgError) string {
	if pe.ConstraintName == "" {
		return ""
	}
	return ", constraint " + pe.ConstraintName
}
