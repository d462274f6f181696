package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/idemkit/idemkit/idempotent"
)

// DB is the part of a connection pool a Store uses. *pgxpool.Pool satisfies it (and so does a single *pgx.Conn,
// though a Lambda function wants the pool: see the package documentation).
type DB interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	BeginTx(ctx context.Context, txOptions pgx.TxOptions) (pgx.Tx, error)
}

// Store is an idempotent.Store on a PostgreSQL table. It is safe for concurrent use; create one per function at
// init time, on a pool created at init time, and share it across invocations.
type Store struct {
	db   DB
	opts Options
	sql  statements
}

// statements are the store's SQL texts, built once per table: constant texts let pgx prepare each once per
// connection and keep it in its statement cache.
type statements struct {
	claim, get, complete, release, holder, sweep string
}

var (
	_ idempotent.Store = (*Store)(nil)
	_ DB               = (*pgxpool.Pool)(nil)
	_ DB               = (*pgx.Conn)(nil)
)

// New returns a Store on the table named by Options.Table (default "idempotency"), which CreateTable or Schema's
// statements create.
func New(db DB, optFns ...func(*Options)) *Store {
	o := resolve(optFns)
	return &Store{db: db, opts: o, sql: newStatements(o)}
}

// Options returns a copy of the store's options with defaults applied.
func (s *Store) Options() Options { return s.opts }

// The record's columns in the order decode reads them.
const columns = `status, expiration, in_progress_expiration, validation, owner, data`

func newStatements(o Options) statements {
	t, _ := o.tableIdent()
	return statements{
		// One statement: the INSERT claims an absent key; ON CONFLICT ... DO UPDATE ... WHERE takes over a record
		// that has expired at $6, or (with $7, the takeover policy) an INPROGRESS record whose lease has ended at $6.
		// The WHERE is evaluated on the latest committed version of the row, which the statement locks, so two
		// claims of one key serialise on the row and exactly one wins. When the record is live the upsert returns
		// nothing, and the second SELECT of the UNION returns the live record in the same round trip. A
		// data-modifying CTE is not visible to the rest of its statement, which reads the snapshot taken when the
		// statement began: NOT EXISTS (SELECT FROM claimed) keeps the old row out of a won claim's answer.
		claim: `WITH claimed AS (
	INSERT INTO ` + t + ` AS r (id, status, expiration, in_progress_expiration, validation, owner, data)
	VALUES ($1::text, 'INPROGRESS', $2::timestamptz, $3::timestamptz, $4::text, $5::text, NULL)
	ON CONFLICT (id) DO UPDATE SET
		status = 'INPROGRESS',
		expiration = EXCLUDED.expiration,
		in_progress_expiration = EXCLUDED.in_progress_expiration,
		validation = EXCLUDED.validation,
		owner = EXCLUDED.owner,
		data = NULL
	WHERE r.expiration <= $6::timestamptz
	   OR ($7::boolean AND r.status = 'INPROGRESS' AND r.in_progress_expiration <= $6::timestamptz)
	RETURNING 1
)
SELECT true, NULL::text, NULL::timestamptz, NULL::timestamptz, NULL::text, NULL::text, NULL::bytea FROM claimed
UNION ALL
SELECT false, ` + columns + ` FROM ` + t + ` WHERE id = $1::text AND NOT EXISTS (SELECT FROM claimed)`,

		get: `SELECT ` + columns + ` FROM ` + t + ` WHERE id = $1::text AND expiration > $2::timestamptz`,

		// The fence: only the INPROGRESS record held by $4 becomes COMPLETED. The outer SELECT says, from the
		// statement's snapshot, why a fenced completion failed, without a second round trip.
		complete: `WITH done AS (
	UPDATE ` + t + ` SET status = 'COMPLETED', expiration = $2::timestamptz, in_progress_expiration = NULL, data = $3::bytea
	WHERE id = $1::text AND status = 'INPROGRESS' AND owner = $4::text
	RETURNING 1
)
SELECT EXISTS (SELECT FROM done), cur.status, cur.owner = $4::text
FROM (VALUES (1)) AS one LEFT JOIN ` + t + ` AS cur ON cur.id = $1::text`,

		release: `WITH gone AS (
	DELETE FROM ` + t + ` WHERE id = $1::text AND status = 'INPROGRESS' AND owner = $2::text
	RETURNING 1
)
SELECT EXISTS (SELECT FROM gone), cur.status, cur.owner = $2::text
FROM (VALUES (1)) AS one LEFT JOIN ` + t + ` AS cur ON cur.id = $1::text`,

		holder: `SELECT status, owner = $2::text FROM ` + t + ` WHERE id = $1::text`,

		// The subquery reads the expiration index, oldest first, and locks at most $2 rows; the DELETE then finds
		// them by primary key. FOR UPDATE re-checks the expiry on the latest version of each row it locks, so a
		// record a claim took over since the snapshot is left alone, and SKIP LOCKED passes over a row a claim is
		// taking over at this moment instead of waiting for it (a claim that waited for the sweeper finds the row
		// gone and inserts anew). Once locked, a row cannot change before the DELETE, so the DELETE needs no
		// condition of its own; one would make the planner read every expired row.
		sweep: `DELETE FROM ` + t + ` WHERE id IN (
	SELECT id FROM ` + t + ` WHERE expiration <= $1::timestamptz ORDER BY expiration LIMIT $2::integer FOR UPDATE SKIP LOCKED
)`,
	}
}

// Instants are stored in timestamptz, which keeps microseconds. A stored end (expiry, lease) is rounded up and
// the instant it is compared with is rounded down, so a record is never judged over before its true end, and the
// engine's own judgement of a returned record (Record.Expired, Record.LeaseEnded) agrees with the store's.
func ceilMicro(t time.Time) time.Time {
	t = t.Round(0) // drop the monotonic reading
	if f := t.Truncate(time.Microsecond); !f.Equal(t) {
		return f.Add(time.Microsecond)
	}
	return t
}

func floorMicro(t time.Time) time.Time { return t.Round(0).Truncate(time.Microsecond) }

// Claim implements idempotent.Store with one statement (see the package documentation). Only when the live record
// was committed by a claim running at the same moment, after the statement's snapshot, does the statement find
// no row to return; Claim then reads it with one more statement, and returns idempotent.ErrRecordChanged when it
// has gone by then.
func (s *Store) Claim(ctx context.Context, c idempotent.Claim) (*idempotent.Record, error) {
	rec := c.Record
	var leaseEnd *time.Time
	if !rec.LeaseEnd.IsZero() {
		le := ceilMicro(rec.LeaseEnd)
		leaseEnd = &le
	}
	var (
		won                       bool
		status, validation, owner *string // NULL on the row of a won claim
		expiration, lease         *time.Time
		data                      []byte
	)
	err := s.db.QueryRow(ctx, s.sql.claim, rec.ID, ceilMicro(rec.ExpiresAt), leaseEnd, rec.Fingerprint, rec.Owner,
		floorMicro(c.Now), c.Takeover).Scan(&won, &status, &expiration, &lease, &validation, &owner, &data)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		// The row exists (the upsert met it) but is not in this statement's snapshot: committed just now.
		return s.reread(ctx, c)
	case err != nil:
		return nil, fmt.Errorf("pgstore: claim %s: %w", rec.ID, classify(err))
	case won:
		return nil, nil
	}
	var old idempotent.Record
	if err := decodeInto(&old, rec.ID, *status, *expiration, lease, *validation, *owner, data); err != nil {
		return nil, fmt.Errorf("pgstore: claim %s: %w", rec.ID, err)
	}
	if old.Claimable(c.Now, c.Takeover) {
		// The snapshot shows a claimable record, yet the upsert, judging the latest version, did not take it: a
		// concurrent claim took it first. Read what holds the key now.
		return s.reread(ctx, c)
	}
	return conflict(c, &old)
}

// reread answers a claim whose statement met a row its snapshot does not show as it is now, by reading the key
// again: the live record, or idempotent.ErrRecordChanged when there is none any more.
func (s *Store) reread(ctx context.Context, c idempotent.Claim) (*idempotent.Record, error) {
	got, err := s.Get(ctx, c.Record.ID, c.Now)
	if err != nil {
		return nil, fmt.Errorf("pgstore: claim %s: %w", c.Record.ID, err)
	}
	if got == nil {
		return nil, fmt.Errorf("pgstore: claim %s: conflicting record gone: %w", c.Record.ID, idempotent.ErrRecordChanged)
	}
	return conflict(c, got)
}

// conflict answers a claim that met the live record old.
func conflict(c idempotent.Claim, old *idempotent.Record) (*idempotent.Record, error) {
	if old.Status == idempotent.StatusInProgress && old.Owner == c.Record.Owner {
		// Our own claim: an earlier attempt of this statement committed and its answer was lost. Owner tokens
		// are random per claim, so no other invocation holds this one.
		return nil, nil
	}
	return old, nil
}

// decodeInto fills rec from a row's columns.
func decodeInto(rec *idempotent.Record, id, status string, expiration time.Time, lease *time.Time, validation, owner string, data []byte) error {
	st, err := idempotent.ParseStatus(status)
	if err != nil {
		return err
	}
	*rec = idempotent.Record{ID: id, Status: st, Fingerprint: validation, Owner: owner, ExpiresAt: expiration}
	if lease != nil {
		rec.LeaseEnd = *lease
	}
	if st == idempotent.StatusCompleted {
		rec.Response = data
		if rec.Response == nil {
			rec.Response = []byte{}
		}
	}
	return nil
}

// Complete implements idempotent.Store. Without effects it is one statement: the fenced UPDATE (the record is
// INPROGRESS and held by rec.Owner), which also reports why a fenced completion failed. With effects it is one
// transaction: BEGIN, then the fenced UPDATE and the Statement effects sent together in one round trip, then the
// Func effects, then COMMIT (see Exec and Func).
func (s *Store) Complete(ctx context.Context, rec idempotent.Record, effects []idempotent.Effect) error {
	if rec.Status != idempotent.StatusCompleted {
		return fmt.Errorf("pgstore: complete %s: cannot complete with status %s", rec.ID, rec.Status)
	}
	if len(effects) > 0 {
		return s.completeTx(ctx, rec, effects)
	}
	var done bool
	var status *string
	var same *bool
	err := s.db.QueryRow(ctx, s.sql.complete, s.completeArgs(rec)...).Scan(&done, &status, &same)
	if err != nil {
		return fmt.Errorf("pgstore: complete %s: %w", rec.ID, classify(err))
	}
	if !done {
		return fmt.Errorf("pgstore: complete %s: %s: %w", rec.ID, fenceReason(status, same), idempotent.ErrFenced)
	}
	return nil
}

func (s *Store) completeArgs(rec idempotent.Record) []any {
	data := rec.Response
	if data == nil {
		data = []byte{} // an empty response is recorded as one, not as NULL
	}
	return []any{rec.ID, ceilMicro(rec.ExpiresAt), data, rec.Owner}
}

// fenceReason says why a fenced write failed, from the record as the statement's snapshot saw it, without
// revealing tokens.
func fenceReason(status *string, sameOwner *bool) string {
	switch {
	case status == nil:
		return "record absent"
	case *status != idempotent.StatusInProgress.String():
		return "record is " + *status
	case sameOwner != nil && !*sameOwner:
		return "record held by another invocation"
	default:
		return "record changed concurrently"
	}
}

// Release implements idempotent.Store with one fenced DELETE, which also reports why nothing was deleted. A
// record absent when the statement began has been released already (an earlier attempt deleted it, its answer
// lost). Only when the snapshot still shows the owner's INPROGRESS record that the DELETE, judging the latest
// version, did not delete, does Release read the key again to tell a concurrent delete (released) from a takeover
// (fenced).
func (s *Store) Release(ctx context.Context, id, owner string) error {
	var gone bool
	var status *string
	var same *bool
	if err := s.db.QueryRow(ctx, s.sql.release, id, owner).Scan(&gone, &status, &same); err != nil {
		return fmt.Errorf("pgstore: release %s: %w", id, classify(err))
	}
	if gone || status == nil {
		return nil
	}
	if *status == idempotent.StatusInProgress.String() && same != nil && *same {
		err := s.db.QueryRow(ctx, s.sql.holder, id, owner).Scan(&status, &same)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("pgstore: release %s: %w", id, classify(err))
		}
	}
	return fmt.Errorf("pgstore: release %s: %s: %w", id, fenceReason(status, same), idempotent.ErrFenced)
}

// Get implements idempotent.Store with one SELECT; a record expired at now is not returned. PostgreSQL reads the
// latest committed version, so the read is strongly consistent.
func (s *Store) Get(ctx context.Context, id string, now time.Time) (*idempotent.Record, error) {
	var (
		status, validation, owner string
		expiration                time.Time
		lease                     *time.Time
		data                      []byte
	)
	err := s.db.QueryRow(ctx, s.sql.get, id, floorMicro(now)).Scan(&status, &expiration, &lease, &validation, &owner, &data)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pgstore: get %s: %w", id, classify(err))
	}
	var rec idempotent.Record
	if err := decodeInto(&rec, id, status, expiration, lease, validation, owner, data); err != nil {
		return nil, fmt.Errorf("pgstore: get %s: %w", id, err)
	}
	return &rec, nil
}
