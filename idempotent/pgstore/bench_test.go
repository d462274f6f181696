package pgstore_test

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/idempotenttest"
	"github.com/idemkit/idemkit/idempotent/pgstore"
	"github.com/idemkit/idemkit/internal/pglocal/pgtest"
)

// benchResp is what the benchmark's handler returns and the engine records (about 100 bytes of JSON).
var benchResp = idempotenttest.BenchResp

// BenchmarkPostgres runs requests through the engine on the test binary's PostgreSQL (loopback, fsync off) and
// reports, beside the time of a request (ns/op, fingerprint included), the statements it sent (stmts/op, counted
// by a pgx tracer) and bare-ns/op: the same number of plain statements on the same table, timed in the same
// iterations with the benchmark timer stopped (an INSERT and an UPDATE by primary key for a first request, a
// SELECT by primary key for a duplicate; for a first request with an effect also BEGIN, the effect's INSERT and
// COMMIT). ratio-vs-bare divides the two.
func BenchmarkPostgres(b *testing.B) {
	ctx := context.Background()
	opt := newTable(b)
	o := pgstore.Options{}
	opt(&o)
	table := pgx.Identifier{o.Table}.Sanitize()
	effects := pgx.Identifier{pgtest.UniqueName(b, "fx")}.Sanitize()
	if _, err := pgtest.Pool(b).Exec(ctx, `CREATE TABLE `+effects+` (id text PRIMARY KEY, amount integer NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _, _ = pgtest.Pool(b).Exec(ctx, `DROP TABLE `+effects) })
	pool, stmts := countingPool(b)
	engine := idempotent.New(pgstore.New(pool, opt))
	bare := pgtest.NewPool(b, nil) // the baselines' statements, not counted
	spec := idempotent.Spec[resp]{}
	body := `{"amount":4999,"currency":"eur","description":"` + strings.Repeat("x", 900) + `"}`
	var seq atomic.Int64
	handler := func(context.Context) (resp, error) { return benchResp, nil }
	withEffect := func(ctx context.Context) (resp, error) {
		pgstore.Exec(ctx, `INSERT INTO `+effects+` (id, amount) VALUES ($1, $2)`, "pay_"+strconv.FormatInt(seq.Add(1), 10), 4999)
		return benchResp, nil
	}
	bareFirst := func(key string, effect bool) {
		now := time.Now()
		if effect {
			tx, err := bare.Begin(ctx)
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = tx.Rollback(ctx) }() // after a failure, so the connection returns to the pool
			if _, err := tx.Exec(ctx, `INSERT INTO `+effects+` (id, amount) VALUES ($1, $2)`, "bare_"+key, 4999); err != nil {
				b.Fatal(err)
			}
			if _, err := tx.Exec(ctx, `UPDATE `+table+` SET status = 'COMPLETED', data = $2 WHERE id = $1`, "bare_"+key, []byte(benchResp.Body)); err != nil {
				b.Fatal(err)
			}
			if err := tx.Commit(ctx); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := bare.Exec(ctx, `INSERT INTO `+table+` (id, status, expiration, in_progress_expiration, validation, owner) VALUES ($1, 'INPROGRESS', $2, $3, 'fp', 'owner')`,
			"bare_"+key, now.Add(time.Hour), now.Add(time.Minute)); err != nil {
			b.Fatal(err)
		}
		if !effect {
			if _, err := bare.Exec(ctx, `UPDATE `+table+` SET status = 'COMPLETED', data = $2 WHERE id = $1`, "bare_"+key, []byte(benchResp.Body)); err != nil {
				b.Fatal(err)
			}
		}
	}
	// keys is unique across the sub-benchmarks' repeated runs (-count).
	var keys atomic.Int64
	prefix := strconv.FormatInt(time.Now().UnixNano(), 36)
	fresh := func() string { return prefix + "-" + strconv.FormatInt(keys.Add(1), 10) }
	run := func(b *testing.B, key func() string, fn func(context.Context) (resp, error), baseline func(key string)) {
		stmts.take()
		var bareTime time.Duration
		i := 0
		for b.Loop() {
			k := key()
			if _, err := idempotent.Run(ctx, engine, request(k, body), spec, fn); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			start := time.Now()
			baseline(k)
			bareTime += time.Since(start)
			b.StartTimer()
			i++
		}
		n := 0
		for _, c := range stmts.take() {
			n += c
		}
		b.ReportMetric(float64(n)/float64(i), "stmts/op")
		b.ReportMetric(float64(bareTime.Nanoseconds())/float64(i), "bare-ns/op")
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(bareTime.Nanoseconds()), "ratio-vs-bare")
	}

	b.Run("FirstRequest", func(b *testing.B) {
		run(b, fresh, handler, func(key string) { bareFirst(key, false) })
	})
	b.Run("FirstRequestWithEffect", func(b *testing.B) {
		run(b, fresh, withEffect, func(key string) { bareFirst(key, true) })
	})
	b.Run("Duplicate", func(b *testing.B) {
		dup := fresh()
		if _, err := idempotent.Run(ctx, engine, request(dup, body), spec, handler); err != nil {
			b.Fatal(err)
		}
		id := scope.ID(dup)
		run(b, func() string { return dup }, handler, func(string) {
			var data []byte
			if err := bare.QueryRow(ctx, `SELECT data FROM `+table+` WHERE id = $1`, id).Scan(&data); err != nil {
				b.Fatal(err)
			}
		})
	})
}
