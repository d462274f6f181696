package pgstore_test

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/idempotent/pgstore"
	"github.com/idemkit/idemkit/internal/pglocal/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

// newTable creates an idempotency table with a unique name on the test server and drops it when the test ends.
// It returns the option that names it.
func newTable(t testing.TB) func(*pgstore.Options) {
	t.Helper()
	name := pgtest.UniqueName(t, "idem")
	opt := func(o *pgstore.Options) { o.Table = name }
	require.NoError(t, pgstore.CreateTable(context.Background(), pgtest.Pool(t), opt))
	t.Cleanup(func() {
		_, _ = pgtest.Pool(t).Exec(context.Background(), "DROP TABLE IF EXISTS "+pgx.Identifier{name}.Sanitize())
	})
	return opt
}

// statements counts the statements a pool sends, by kind, through pgx's tracer hooks: single statements
// (Exec, Query, QueryRow, and BEGIN/COMMIT/ROLLBACK, which pgx sends as statements) and each statement of a batch.
type statements struct {
	mu   sync.Mutex
	n    map[string]int
	last string // the last statement's text
}

func (s *statements) add(sql string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n[kind(sql)]++
	s.last = sql
}

// kind names a statement by its first words: the store's statements start with their CTE's name.
func kind(sql string) string {
	f := strings.Fields(strings.ToLower(sql))
	switch {
	case len(f) == 0:
		return ""
	case f[0] == "with" && len(f) > 1:
		return f[1] // claimed, done, gone
	case f[0] == "select" && len(f) > 1 && strings.HasPrefix(f[1], "status"):
		return "get"
	default:
		return f[0]
	}
}

func (s *statements) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	s.add(d.SQL)
	return ctx
}
func (s *statements) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (s *statements) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}
func (s *statements) TraceBatchQuery(_ context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	s.add(d.SQL)
}
func (s *statements) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

// take returns the counts since the last take and resets them.
func (s *statements) take() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.n
	s.n = map[string]int{}
	return n
}

// countingPool returns a pool of its own whose statements are counted.
func countingPool(t testing.TB) (*pgxpool.Pool, *statements) {
	t.Helper()
	st := &statements{n: map[string]int{}}
	pool := pgtest.NewPool(t, func(c *pgxpool.Config) { c.ConnConfig.Tracer = st })
	return pool, st
}
