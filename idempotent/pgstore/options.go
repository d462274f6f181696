package pgstore

import (
	"strings"

	"github.com/jackc/pgx/v5"
)

// DefaultTable is the table name used when Options.Table is empty.
const DefaultTable = "idempotency"

// Options configures a Store. New, CreateTable, Schema and NewSweeper fill in the defaults for fields left at their
// zero value, so the same optFns given to each describe the same table.
type Options struct {
	// Table is the table's name, optionally qualified by its schema ("app.idempotency"); each part is quoted as an
	// identifier, so it is used exactly as written (case included). Default "idempotency", found through the
	// connection's search_path.
	Table string
	// TxOptions are those of the transaction of a completion with effects. The zero value begins a transaction
	// with the server's default isolation level (READ COMMITTED unless configured otherwise). Under SERIALIZABLE or
	// REPEATABLE READ, a serialization failure is transient: the engine retries the completion, effects included, in
	// a new transaction.
	TxOptions pgx.TxOptions
}

func resolve(optFns []func(*Options)) Options {
	var o Options
	for _, fn := range optFns {
		fn(&o)
	}
	if o.Table == "" {
		o.Table = DefaultTable
	}
	return o
}

// tableIdent returns the quoted, possibly schema-qualified table name and its last part (unquoted), from which
// the index name is derived.
func (o Options) tableIdent() (quoted, base string) {
	parts := strings.Split(o.Table, ".")
	return pgx.Identifier(parts).Sanitize(), parts[len(parts)-1]
}
