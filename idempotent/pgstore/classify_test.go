package pgstore

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"

	"github.com/idemkit/idemkit/idempotent"
)

func TestClassifySQLState(t *testing.T) {
	for _, tc := range []struct {
		code              string
		permanent, failed bool
	}{
		{"42P01", true, false},  // undefined_table
		{"42501", true, false},  // insufficient_privilege
		{"42601", true, false},  // syntax_error
		{"42703", true, false},  // undefined_column
		{"22003", true, false},  // numeric_value_out_of_range
		{"0A000", true, false},  // feature_not_supported
		{"3D000", true, false},  // invalid_catalog_name
		{"3F000", true, false},  // invalid_schema_name
		{"23505", false, true},  // unique_violation
		{"23503", false, true},  // foreign_key_violation
		{"23514", false, true},  // check_violation
		{"P0001", false, true},  // raise_exception
		{"40001", false, false}, // serialization_failure: retry
		{"40P01", false, false}, // deadlock_detected: retry
		{"57014", false, false}, // query_canceled (statement_timeout): retry
		{"57P01", false, false}, // admin_shutdown: retry
		{"08006", false, false}, // connection_failure: retry
		{"53300", false, false}, // too_many_connections: retry
		{"25006", false, false}, // read_only_sql_transaction (a failover in progress): retry
	} {
		t.Run(tc.code, func(t *testing.T) {
			err := fmt.Errorf("wrapped: %w", &pgconn.PgError{Code: tc.code})
			assert.Equal(t, tc.permanent, errors.Is(classify(err), idempotent.ErrPermanent))
			assert.Equal(t, tc.failed, effectFailed(err))
		})
	}
	assert.False(t, errors.Is(classify(errors.New("dial tcp: connection refused")), idempotent.ErrPermanent))
	assert.False(t, effectFailed(errors.New("unexpected EOF")))
	assert.True(t, effectFailed(fmt.Errorf("insufficient funds: %w", idempotent.ErrEffectFailed)))
}

func TestClassifyFuncError(t *testing.T) {
	live := context.Background()
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	for name, tc := range map[string]struct {
		ctx        context.Context
		err        error
		connClosed bool
		failed     bool
		permanent  bool
	}{
		"OwnVerdict":          {live, errors.New("limit exceeded"), false, true, false},
		"ExplicitFailure":     {live, idempotent.ErrEffectFailed, true, true, false},
		"Constraint":          {live, &pgconn.PgError{Code: "23505"}, false, true, false},
		"Malformed":           {live, &pgconn.PgError{Code: "42601"}, false, false, true},
		"Serialization":       {live, &pgconn.PgError{Code: "40001"}, false, false, false},
		"ConnectionLost":      {live, errors.New("unexpected EOF"), true, false, false},
		"ContextEnded":        {ended, errors.New("whatever"), false, false, false},
		"DeadlineInErrorOnly": {live, fmt.Errorf("query: %w", context.DeadlineExceeded), false, false, false},
	} {
		t.Run(name, func(t *testing.T) {
			failed, err := classifyFunc(tc.ctx, tc.err, tc.connClosed)
			assert.Equal(t, tc.failed, failed)
			assert.Equal(t, tc.permanent, errors.Is(err, idempotent.ErrPermanent))
		})
	}
}

func TestMicrosecondRounding(t *testing.T) {
	base := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC) // a whole microsecond
	assert.Equal(t, base, ceilMicro(base))
	assert.Equal(t, base, floorMicro(base))
	assert.Equal(t, base.Add(time.Microsecond), ceilMicro(base.Add(time.Nanosecond)))
	assert.Equal(t, base, floorMicro(base.Add(999*time.Nanosecond)))
}

func TestIndexName(t *testing.T) {
	assert.Equal(t, "idempotency_expiration_idx", indexName("idempotency"))
	long := "a_table_name_long_enough_that_the_suffix_no_longer_fits_in_63b"
	a, b := indexName(long+"1"), indexName(long+"2")
	assert.LessOrEqual(t, len(a), maxIdentifier)
	assert.NotEqual(t, a, b)
	assert.Equal(t, a, indexName(long+"1"), "deterministic")
}
