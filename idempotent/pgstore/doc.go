// Package pgstore keeps idempotency records in a PostgreSQL table (RDS, Aurora, through RDS Proxy or not): an
// idempotent.Store whose completion can commit the handler's own SQL writes in the same transaction as the
// COMPLETED record, so that the writes exist if and only if the response is recorded.
//
//	var pool = mustPool() // at init: pgxpool.New(ctx, os.Getenv("DATABASE_URL")), outside the handler
//	var engine = idempotent.New(pgstore.New(pool))
//
//	func charge(ctx context.Context, req Payment) (Receipt, error) {
//		// Commits with the record, or not at all; affecting no row fails the request and frees the key.
//		pgstore.ExecRows(ctx, 1, `UPDATE accounts SET balance = balance - $1 WHERE id = $2 AND balance >= $1`, req.Amount, req.Account)
//		pgstore.Exec(ctx, `INSERT INTO payments (id, account, amount) VALUES ($1, $2, $3)`, req.ID, req.Account, req.Amount)
//		return Receipt{ID: req.ID}, nil
//	}
//
// # Table
//
// CreateTable creates it (or run the statements of Schema in a migration):
//
//	CREATE TABLE IF NOT EXISTS idempotency (
//		id                     text        PRIMARY KEY,      -- record ID: SHA-256 of scope and key (never the raw key)
//		status                 text        NOT NULL CHECK (status IN ('INPROGRESS', 'COMPLETED')),
//		expiration             timestamptz NOT NULL,         -- end of retention
//		in_progress_expiration timestamptz,                  -- end of the claim's lease (INPROGRESS)
//		validation             text        NOT NULL,         -- payload fingerprint
//		owner                  text        NOT NULL,         -- token of the claiming invocation (fencing)
//		data                   bytea                         -- the recorded response (COMPLETED)
//	);
//	CREATE INDEX IF NOT EXISTS idempotency_expiration_idx ON idempotency (expiration);
//
// The column names are those of the DynamoDB record (CONTRACT §2); the instants are timestamptz rather than epoch
// numbers, which PostgreSQL indexes and compares natively. Options.Table names another table, schema-qualified or
// not. The function's database role needs SELECT, INSERT, UPDATE and DELETE on it, nothing more.
//
// # Time
//
// Expiry and leases are judged at the instant the engine passes (idempotent.Claim.Now, the now of Get and of
// Sweep), never at the server's now(): the engine's clock decides, so a fake clock drives tests and a server whose
// clock drifts changes nothing. timestamptz keeps microseconds: stored ends are rounded up and compared instants
// rounded down, so a record never ends before its time. An expired record counts as absent in every condition and
// in Get, whether or not the Sweeper has deleted it yet.
//
// # Statements
//
//   - Claim: one statement. INSERT ... ON CONFLICT (id) DO UPDATE ... WHERE the record has expired, or (takeover
//     policy) is INPROGRESS with an ended lease; the conflict's WHERE judges the latest committed version of the
//     row, which the statement locks, so concurrent claims of one key serialise and exactly one wins. The INSERT is
//     a data-modifying CTE; the statement's second SELECT returns the live record when the upsert did not claim, so
//     a duplicate costs one round trip, like DynamoDB's ALL_OLD. That SELECT reads the statement's snapshot: when
//     the live record was committed by a concurrent claim after the snapshot was taken (two first requests at the
//     same moment), it is not there, and Claim reads it with a second statement.
//   - Complete: one UPDATE fenced by status = 'INPROGRESS' AND owner = the claim's token, which also says, in the
//     same statement, why a fenced completion failed (absent, COMPLETED, another holder).
//   - Release: one DELETE with the same fence; an absent record is released already.
//   - Get: one SELECT.
//
// Through the engine a first request costs two statements (claim, completion), a duplicate, a payload mismatch or a
// request while the first is in progress one. pgx's default query mode prepares each statement once per connection
// (one more round trip, the first time only).
//
// # Atomic completion
//
// A handler hands its SQL writes to the engine with Exec, ExecRows (a conditional write that must affect exactly
// n rows) or AddFunc (a function given the transaction, for writes that read first), or idempotent.AddEffect with
// a Statement or a Func. The completion is then one transaction: BEGIN; the fenced UPDATE and every Statement sent
// together in one round trip (a pgx batch); the Funcs; COMMIT. Three round trips, plus the Funcs' own.
//
// The fenced UPDATE locks the record's row until COMMIT, so a duplicate that arrives meanwhile waits for the
// transaction, then answers as its statement's snapshot saw the record: in progress (409 with Retry-After), and its
// retry replays. Keep Funcs short, and bound every statement with a statement_timeout on the function's role.
//
// If an effect's condition fails, nothing commits, the engine releases the key and the request fails with an error
// wrapping idempotent.ErrEffectFailed (HTTP 409, retry with the same key): an integrity constraint (SQLSTATE class
// 23, including a deferred constraint checked at COMMIT), an exception raised by a trigger (class P0), a row count
// other than ExecRows asked for, or a Func's own error. An effect PostgreSQL refuses as malformed (class 42:
// syntax error, unknown table or column, missing privilege; class 22: a value out of range) wraps
// idempotent.ErrPermanent (HTTP 500, no retry) and also commits nothing. A lost connection, a statement timeout or
// a serialization failure is transient: the engine retries the whole transaction within its completion budget. If
// the answer to COMMIT itself is lost, the engine settles the outcome by the owner token: a COMPLETED record with
// its token means the transaction committed, effects included; the fence makes a second commit impossible.
//
// # Large responses
//
// The response is stored as it is in a bytea column: no gzip and no size limit of the store's own. PostgreSQL
// compresses large values itself (TOAST) and accepts up to 1 GB, far above Lambda's 6 MB response limit, so no
// response is ever too large to record (dynamostore needs ErrResponseTooLarge for DynamoDB's 400 KB item limit).
//
// # Errors
//
// Errors that no retry can fix wrap idempotent.ErrPermanent: SQLSTATE classes 42 (undefined_table,
// insufficient_privilege, syntax_error), 22 (data exception), 0A (feature not supported), 3D and 3F (no such
// database or schema). The apigw adapter answers them with 500 instead of 503 + Retry-After. Everything else (a
// refused connection, 57014 statement timeout, 57P01 administrator shutdown during a failover, 40001
// serialization failure, 40P01 deadlock, 53300 too many connections) is transient: 503 before the handler runs,
// retries of the completion after.
//
// # Connections in Lambda
//
// Create the pool at init, outside the handler, and share it: a warm execution environment then reuses its
// connection across invocations, and only a cold start pays for TCP, TLS and authentication. pgxpool.New does not
// connect (with MinConns zero), so init makes no database call. One environment runs one invocation at a time, so
// a small pool (MaxConns 2) is enough; the database's connection limit is shared by every concurrent environment, which is what RDS Proxy is
// for. A frozen environment's connections may be closed by the server, the proxy or a NAT while it sleeps: pgxpool
// pings a connection idle for more than a second before handing it out and replaces a dead one, and the store's
// errors on a connection lost mid-request are transient.
//
//	cfg, err := pgxpool.ParseConfig(os.Getenv("DATABASE_URL"))
//	cfg.MaxConns = 2
//	cfg.MaxConnIdleTime = 5 * time.Minute // below the proxy's idle client timeout
//	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
//
// # RDS Proxy and PgBouncer
//
// RDS Proxy multiplexes client sessions over fewer database connections at transaction boundaries, unless it
// pins a session to its connection because the session changed state other sessions must not see: SET of a
// session variable, SQL PREPARE, temporary tables, advisory locks (AWS's "Avoiding pinning an RDS Proxy"). The
// store changes no session state: it sends no SET, holds no lock beyond a transaction and creates no temporary
// table. Two things to configure:
//
//   - Prepared statements. pgx's default query mode (QueryExecModeCacheStatement) creates named prepared
//     statements and caches them per connection. Behind a proxy that moves transactions between database
//     connections, a named statement may not exist on the next one, and a proxy that tracks them may pin the
//     session instead; PgBouncer in transaction mode supports them only from 1.21 with max_prepared_statements
//     set. Use QueryExecModeCacheDescribe (unnamed statements, their parameter and result types cached by pgx:
//     still one round trip) or QueryExecModeExec (types inferred from the Go arguments, text format, one round
//     trip): cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeCacheDescribe, or default_query_exec_mode=
//     cache_describe in the connection string. The store's statements carry explicit casts, and its tests run the
//     conformance suite in all four of pgx's modes.
//   - Session settings. Runtime parameters in the connection string (statement_timeout=...) are session state
//     sent at startup, and a SET pins the session; RDS Proxy also refuses the "options" startup parameter. Set
//     such defaults on the database role instead (ALTER ROLE app SET statement_timeout = '5s') or in the proxy's
//     initialization query.
//
// Watch the proxy's DatabaseConnectionsCurrentlySessionPinned metric: a value close to DatabaseConnections means
// nearly every session is pinned.
//
// # IAM authentication
//
// With IAM database authentication (on the database or on RDS Proxy), the password is a token signed with the
// function's role credentials and valid for 15 minutes; only new connections present it. Give pgx a BeforeConnect
// hook that builds a fresh token for each new connection with the RDS token builder
// (github.com/aws/aws-sdk-go-v2/feature/rds/auth, which this module does not import):
//
//	awsCfg, _ := config.LoadDefaultConfig(ctx)
//	cfg, _ := pgxpool.ParseConfig("host=myproxy.proxy-xxxx.us-east-1.rds.amazonaws.com port=5432 user=app dbname=app sslmode=verify-full")
//	cfg.BeforeConnect = func(ctx context.Context, cc *pgx.ConnConfig) error {
//		token, err := auth.BuildAuthToken(ctx, fmt.Sprintf("%s:%d", cc.Host, cc.Port), awsCfg.Region, cc.User, awsCfg.Credentials)
//		if err != nil {
//			return err
//		}
//		cc.Password = token
//		return nil
//	}
//	pool, _ := pgxpool.NewWithConfig(ctx, cfg)
//
// Building a token is a local signature (no network call). TLS is required with IAM authentication; the function
// needs rds-db:connect on the database user (arn:aws:rds-db:region:account:dbuser:prx-0123456789abcdef/app for a proxy). A
// connection opened with a token stays valid after the token expires, so a long-lived pooled connection needs no
// refresh; set MaxConnLifetime if the proxy or database should see connections rotate.
//
// # Expired rows
//
// PostgreSQL has no TTL. A Sweeper deletes expired rows in bounded batches (DELETE ... WHERE id IN (SELECT id ...
// WHERE expiration <= $1 ORDER BY expiration LIMIT $2 FOR UPDATE SKIP LOCKED)), each its own short transaction,
// found through the expiration index; run it from a scheduled function (see the Sweeper example). Rows it has not
// reached yet already count as absent.
package pgstore
