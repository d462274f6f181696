package pgstore_test

import (
	"context"
	"errors"
	"log"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/pgstore"
)

// A Lambda function builds its pool, store and engine once, at init time, outside the handler: a warm execution
// environment reuses the connection across invocations. pgxpool does not connect until the first request.
func Example() {
	cfg, err := pgxpool.ParseConfig(os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	cfg.MaxConns = 2                                                     // one invocation at a time per environment
	cfg.MaxConnIdleTime = 5 * time.Minute                                // below the proxy's idle client timeout
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeCacheDescribe // no named prepared statements (RDS Proxy, PgBouncer)
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		log.Fatal(err)
	}
	engine := idempotent.New(pgstore.New(pool))
	_ = engine // wrap handlers with engine (see the idempotent and apigw packages)
}

// A payment handler whose writes commit in the same transaction as the recorded response: the debit only if the
// balance covers it, else nothing commits and the request fails with idempotent.ErrEffectFailed.
func ExampleExecRows() {
	type payment struct {
		ID, Account string
		Amount      int64
	}
	handler := func(ctx context.Context, p payment) (string, error) {
		debit := `UPDATE accounts SET balance = balance - $1 WHERE id = $2 AND balance >= $1`
		insert := `INSERT INTO payments (id, account, amount) VALUES ($1, $2, $3)`
		if !pgstore.ExecRows(ctx, 1, debit, p.Amount, p.Account) || !pgstore.Exec(ctx, insert, p.ID, p.Account, p.Amount) {
			return "", errors.New("not in an idempotent execution") // or write directly, in a transaction of its own
		}
		return p.ID, nil
	}
	_ = handler
}

// A write that needs to read first runs as a function inside the completion's transaction.
func ExampleAddFunc() {
	handler := func(ctx context.Context, orderID string) (string, error) {
		pgstore.AddFunc(ctx, func(ctx context.Context, tx pgx.Tx) error {
			var stock int
			if err := tx.QueryRow(ctx, `SELECT stock FROM items WHERE id = 'sku-1' FOR UPDATE`).Scan(&stock); err != nil {
				return err
			}
			if stock == 0 {
				return errors.New("out of stock") // nothing commits; the key is freed (ErrEffectFailed)
			}
			_, err := tx.Exec(ctx, `UPDATE items SET stock = stock - 1 WHERE id = 'sku-1'`)
			return err
		})
		return orderID, nil
	}
	_ = handler
}

// The expiry job: a scheduled function (an EventBridge rule, every hour say) deletes expired records in batches
// of 1000, at most 100 batches a run; the next run continues where this one stopped.
func ExampleSweeper() {
	pool, err := pgxpool.New(context.Background(), os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	sweeper := pgstore.NewSweeper(pool, pgstore.SweepOptions{BatchSize: 1000, MaxBatches: 100})
	lambda.Start(func(ctx context.Context) error {
		deleted, err := sweeper.Sweep(ctx, time.Now())
		log.Printf("swept %d expired idempotency records", deleted)
		return err
	})
}

// The table, created by a deployment step or a migration tool (the statements of pgstore.Schema).
func ExampleCreateTable() {
	pool, err := pgxpool.New(context.Background(), os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	if err := pgstore.CreateTable(context.Background(), pool, func(o *pgstore.Options) { o.Table = "app.idempotency" }); err != nil {
		log.Fatal(err)
	}
}
