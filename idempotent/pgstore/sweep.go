package pgstore

import (
	"context"
	"fmt"
	"time"
)

// DefaultSweepBatch is the number of rows one DELETE of the Sweeper removes when SweepOptions.BatchSize is zero.
const DefaultSweepBatch = 1000

// SweepOptions bounds a Sweeper's work.
type SweepOptions struct {
	// BatchSize is the number of expired rows one DELETE removes, each DELETE its own short transaction, so a
	// sweep never holds many row locks or a long transaction. Default DefaultSweepBatch (1000).
	BatchSize int
	// MaxBatches bounds one Sweep call: it stops after that many DELETEs even if expired rows remain (the next
	// scheduled run continues). Zero means no bound: Sweep runs until a batch comes back short or ctx ends.
	MaxBatches int
}

// Sweeper deletes expired records in bounded batches: PostgreSQL has no TTL of its own. Expired records already
// count as absent to the Store (every claim and read compares the expiration with the caller's clock), so sweeping
// only reclaims space; it is meant for a scheduled function (an EventBridge schedule every few minutes or hours),
// not for the request path. Each batch finds its rows through the expiration index, oldest first.
type Sweeper struct {
	db   Execer
	sql  string
	opts SweepOptions
}

// NewSweeper returns a Sweeper for the table named by optFns' Options.Table.
func NewSweeper(db Execer, sweep SweepOptions, optFns ...func(*Options)) *Sweeper {
	if sweep.BatchSize <= 0 {
		sweep.BatchSize = DefaultSweepBatch
	}
	if sweep.MaxBatches < 0 {
		sweep.MaxBatches = 0
	}
	return &Sweeper{db: db, sql: newStatements(resolve(optFns)).sweep, opts: sweep}
}

// Sweep deletes the records expired at now (those whose expiration is at or before it) batch by batch. It returns
// how many rows it deleted, also when it stops on an error or on ctx.
func (s *Sweeper) Sweep(ctx context.Context, now time.Time) (deleted int64, err error) {
	now = floorMicro(now)
	for batch := 0; s.opts.MaxBatches == 0 || batch < s.opts.MaxBatches; batch++ {
		if err := ctx.Err(); err != nil {
			return deleted, err
		}
		tag, err := s.db.Exec(ctx, s.sql, now, s.opts.BatchSize)
		if err != nil {
			return deleted, fmt.Errorf("pgstore: sweep: %w", classify(err))
		}
		deleted += tag.RowsAffected()
		if tag.RowsAffected() < int64(s.opts.BatchSize) {
			return deleted, nil
		}
	}
	return deleted, nil
}
