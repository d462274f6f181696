package pgstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/idemkit/idemkit/idempotent"
)

// SQLSTATE classes (the first two characters of a PostgreSQL error code) that no retry can fix: the statement or
// the setup is wrong, not the moment.
var permanentClasses = map[string]string{
	"0A": "feature not supported",
	"22": "data exception",
	"3D": "invalid catalog name (no such database)",
	"3F": "invalid schema name",
	"42": "syntax error or access rule violation", // undefined_table, undefined_column, insufficient_privilege, ...
}

// sqlState returns the SQLSTATE of err, or "" when err is not a PostgreSQL error.
func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// permanent reports whether err is a PostgreSQL error that no retry can fix: a missing table or column, a missing
// privilege, a syntax error, a value the column cannot hold.
func permanent(err error) bool {
	code := sqlState(err)
	if len(code) != 5 {
		return false
	}
	_, ok := permanentClasses[code[:2]]
	return ok
}

// classify wraps idempotent.ErrPermanent into err when no retry can fix it, so the engine stops retrying and the
// HTTP adapter answers 500 instead of inviting a retry with 503. Connection failures, timeouts (57014
// query_canceled: statement_timeout), server shutdowns (57P01), serialization failures (40001) and deadlocks
// (40P01) stay transient.
func classify(err error) error {
	if permanent(err) {
		return fmt.Errorf("%w (%w)", idempotent.ErrPermanent, err)
	}
	return err
}

// effectFailed reports whether err, from an effect, means that the effect's own condition failed, so that nothing
// may commit and the key is to be freed: an integrity constraint (class 23: unique, foreign key, check, not null,
// exclusion), an exception raised by PL/pgSQL (class P0: a trigger enforcing a business rule), or an error the
// effect itself wrapped with idempotent.ErrEffectFailed.
func effectFailed(err error) bool {
	if errors.Is(err, idempotent.ErrEffectFailed) {
		return true
	}
	code := sqlState(err)
	return len(code) == 5 && (code[:2] == "23" || code[:2] == "P0")
}

// classifyFunc classifies the error of a Func effect: a PostgreSQL error by its SQLSTATE; a broken connection or an
// ended context as transient (the engine retries the whole transaction); any other error as the function's own
// verdict that its condition failed.
func classifyFunc(ctx context.Context, err error, connClosed bool) (failed bool, classified error) {
	switch {
	case effectFailed(err):
		return true, err
	case sqlState(err) != "":
		return false, classify(err)
	case connClosed, ctx.Err() != nil, errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false, err
	default:
		return true, err
	}
}
