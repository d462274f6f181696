package pgstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Execer runs a statement: *pgxpool.Pool, *pgx.Conn and pgx.Tx satisfy it.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Schema returns the statements that create the idempotency table and the index the Sweeper uses, each safe to
// run again (IF NOT EXISTS), for a migration tool or psql. CreateTable runs the same statements.
func Schema(optFns ...func(*Options)) []string {
	o := resolve(optFns)
	table, base := o.tableIdent()
	index := pgx.Identifier{indexName(base)}.Sanitize()
	return []string{
		`CREATE TABLE IF NOT EXISTS ` + table + ` (
	id                     text        PRIMARY KEY,
	status                 text        NOT NULL CHECK (status IN ('INPROGRESS', 'COMPLETED')),
	expiration             timestamptz NOT NULL,
	in_progress_expiration timestamptz,
	validation             text        NOT NULL,
	owner                  text        NOT NULL,
	data                   bytea
)`,
		// The sweeper's DELETE finds expired rows through this index, oldest first, so each batch reads only the
		// rows it deletes however large the table is.
		`CREATE INDEX IF NOT EXISTS ` + index + ` ON ` + table + ` (expiration)`,
	}
}

// CreateTable creates the idempotency table and its expiration index unless they exist. It needs the CREATE
// privilege on the schema; the function itself needs only SELECT, INSERT, UPDATE and DELETE on the table.
func CreateTable(ctx context.Context, db Execer, optFns ...func(*Options)) error {
	for _, stmt := range Schema(optFns...) {
		if _, err := db.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("pgstore: create table: %w", classify(err))
		}
	}
	return nil
}

// maxIdentifier is PostgreSQL's identifier length limit (NAMEDATALEN - 1 bytes); longer names are truncated.
const maxIdentifier = 63

// indexName names the expiration index of table base. A name too long for an identifier is shortened with a hash
// of the whole, so that two long table names that share a prefix never share an index name (CREATE INDEX IF NOT
// EXISTS would then skip the second table's index).
func indexName(base string) string {
	const suffix = "_expiration_idx"
	if len(base)+len(suffix) <= maxIdentifier {
		return base + suffix
	}
	sum := sha256.Sum256([]byte(base))
	h := hex.EncodeToString(sum[:4])
	return base[:maxIdentifier-len(suffix)-len(h)-1] + "_" + h + suffix
}
