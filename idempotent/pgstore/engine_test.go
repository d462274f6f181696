package pgstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/idempotenttest"
	"github.com/idemkit/idemkit/idempotent/pgstore"
	"github.com/idemkit/idemkit/internal/pglocal/pgtest"
	"github.com/idemkit/idemkit/internal/testwait"
)

// The engine-level helpers of the conformance package, under the names this package's tests use.
var (
	scope   = idempotenttest.Scope
	request = idempotenttest.Request
	handler = idempotenttest.Handler
)

type resp = idempotenttest.Resp

// wait receives from ch within the test's bound, failing the test with msg otherwise.
func wait[T any](t *testing.T, ch <-chan T, msg string) T {
	t.Helper()
	return testwait.Recv(t, ch, msg)
}

// TestEngineStatements counts the statements through the engine: a first request is the claim and the
// completion, a duplicate, a mismatch and a request while the first is in progress one claim each; a handler error
// releases the claim, and the key is free again.
func TestEngineStatements(t *testing.T) {
	pool, stmts := countingPool(t)
	engine := idempotent.New(pgstore.New(pool, newTable(t)))
	idempotenttest.RunRoundTrips(t, engine, stmts.take, idempotenttest.RoundTrips{
		First:        map[string]int{"claimed": 1, "done": 1},
		Duplicate:    map[string]int{"claimed": 1},
		Mismatch:     map[string]int{"claimed": 1},
		InProgress:   map[string]int{"claimed": 1},
		Completion:   map[string]int{"done": 1},
		HandlerError: map[string]int{"claimed": 1, "gone": 1},
	}, nil)
}

// TestConcurrentDuplicatesExecuteOnce: 64 goroutines send the same key at once through one engine. The handler
// runs exactly once: it holds the claim until the 63 others have their answer (409 in progress), and a later
// duplicate replays its response.
func TestConcurrentDuplicatesExecuteOnce(t *testing.T) {
	engine := idempotent.New(pgstore.New(pgtest.Pool(t), newTable(t)))
	idempotenttest.RunConcurrentDuplicates(t, []*idempotent.Engine{engine}, "hot-key")
}

// TestFakeClockDrivesExpiry: the store judges expiry and leases at the engine's instant, never at the server's
// now(): a record an hour in the future counts as expired when the engine's clock says so.
func TestFakeClockDrivesExpiry(t *testing.T) {
	opt := newTable(t)
	store := pgstore.New(pgtest.Pool(t), opt)
	// Far from the server's clock, and on a whole microsecond: timestamptz keeps microseconds, and the store rounds
	// stored ends up (a record never ends early), so a sub-microsecond start would end a microsecond later.
	start := time.Now().Add(-100 * time.Hour).Truncate(time.Microsecond)
	t.Run("Expiry", func(t *testing.T) {
		idempotenttest.RunExpiredRecordIsReclaimed(t, store, "expiring", start, time.Microsecond, func(t *testing.T, id string) {
			assert.Equal(t, 1, rawCount(t, opt, id), "the server's now() is 99 hours later, yet the record is kept until the engine reclaims it")
		})
	})
	// A crashed claim (never completed): its lease ends at the engine's clock too.
	t.Run("Lease", func(t *testing.T) {
		idempotenttest.RunEndedLease(t, store, start, time.Microsecond, func(t *testing.T, id string) any {
			o := pgstore.Options{}
			opt(&o)
			var row string // the whole row, every column, as the server holds it
			require.NoError(t, pgtest.Pool(t).QueryRow(context.Background(),
				`SELECT row_to_json(r)::text FROM `+pgx.Identifier{o.Table}.Sanitize()+` r WHERE id = $1`, id).Scan(&row))
			return row
		})
	})
}
