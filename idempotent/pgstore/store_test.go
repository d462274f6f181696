package pgstore_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/idempotenttest"
	"github.com/idemkit/idemkit/idempotent/pgstore"
	"github.com/idemkit/idemkit/internal/pglocal/pgtest"
)

// TestConformance runs the Store conformance suite in each of pgx's query modes: the default statement cache,
// and the modes without named prepared statements that RDS Proxy and PgBouncer (transaction pooling) need.
func TestConformance(t *testing.T) {
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeCacheDescribe, pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol} {
		t.Run(mode.String(), func(t *testing.T) {
			pool := pgtest.NewPool(t, func(c *pgxpool.Config) { c.ConnConfig.DefaultQueryExecMode = mode })
			store := pgstore.New(pool, newTable(t))
			idempotenttest.RunStoreTests(t, func(*testing.T) idempotent.Store { return store })
		})
	}
}

func TestCreateTableIsIdempotentAndIndexed(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.Pool(t)
	opt := newTable(t)
	require.NoError(t, pgstore.CreateTable(ctx, pool, opt), "a second CreateTable is a no-op")

	o := pgstore.Options{}
	opt(&o)
	var names []string
	rows, err := pool.Query(ctx, `SELECT indexname FROM pg_indexes WHERE tablename = $1 AND indexdef LIKE '%(expiration)%'`, o.Table)
	require.NoError(t, err)
	names, err = pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Len(t, names, 1, "one expiration index, not one per CreateTable")
	assert.LessOrEqual(t, len(names[0]), 63)
	assert.True(t, strings.HasSuffix(names[0], "_expiration_idx"), names[0])
}

// TestLongTableNamesGetDistinctIndexes: PostgreSQL truncates identifiers to 63 bytes, so two long table names
// that share a prefix would share a truncated index name, and IF NOT EXISTS would leave the second table without
// its index.
func TestLongTableNamesGetDistinctIndexes(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.Pool(t)
	unique := pgtest.UniqueName(t, "x")
	prefix := "x" + unique[len(unique)-12:] + "_a_rather_long_table_name_shared_by_both_"
	for _, suffix := range []string{"one", "two"} {
		name := prefix + suffix
		require.Less(t, len(name), 64)
		opt := func(o *pgstore.Options) { o.Table = name }
		require.NoError(t, pgstore.CreateTable(ctx, pool, opt))
		t.Cleanup(func() { _, _ = pool.Exec(ctx, "DROP TABLE "+pgx.Identifier{name}.Sanitize()) })
		var n int
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM pg_indexes WHERE tablename = $1 AND indexdef LIKE '%(expiration)%'`, name).Scan(&n))
		assert.Equal(t, 1, n, "table %s has its expiration index", suffix)
	}
}

func TestSchemaQualifiedTable(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.Pool(t)
	schema := pgtest.UniqueName(t, "s")
	_, err := pool.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize())
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = pool.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE") })
	opt := func(o *pgstore.Options) { o.Table = schema + ".Idem Records" }
	require.NoError(t, pgstore.CreateTable(ctx, pool, opt))
	store := pgstore.New(pool, opt)
	idempotenttest.RunStoreTests(t, func(*testing.T) idempotent.Store { return store })

	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{schema, "Idem Records"}.Sanitize()).Scan(&n))
	assert.Positive(t, n, "the records live in the schema-qualified table, name used as written")
}
