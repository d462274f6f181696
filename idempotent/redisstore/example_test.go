package redisstore_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/redisstore"
	"github.com/idemkit/idemkit/internal/redislocal"
)

// A Lambda function builds its store and engine once, at init time, from a URL: rediss:// for TLS (ElastiCache
// with in-transit encryption), user and password for AUTH or an ACL user. go-redis connects lazily, on the first
// request.
func Example() {
	opt, err := redis.ParseURL(os.Getenv("REDIS_URL")) // e.g. rediss://app:secret@master.idem.abc123.use1.cache.amazonaws.com:6379
	if err != nil {
		log.Fatal(err)
	}
	opt.ContextTimeoutEnabled = true // the engine's deadlines bound each call
	engine := idempotent.New(redisstore.New(redis.NewClient(opt)))
	_ = engine // wrap handlers with engine (see the idempotent and apigw packages)
}

// In cluster mode (ElastiCache cluster mode enabled, MemoryDB, Valkey cluster) the client talks to the
// configuration endpoint; each command of the store touches one key, so any slot layout works.
func Example_cluster() {
	opt, err := redis.ParseClusterURL("rediss://app:secret@clustercfg.idem.abc123.use1.cache.amazonaws.com:6379")
	if err != nil {
		log.Fatal(err)
	}
	store := redisstore.New(redis.NewClusterClient(opt), func(o *redisstore.Options) {
		o.KeyPrefix = "idempotency:" + os.Getenv("AWS_LAMBDA_FUNCTION_NAME") + ":"
	})
	_ = store
}

// The whole protocol on a real server (started here with this module's internal test helper; use your own
// server's address): the first request runs the handler, the duplicate replays its response, and the record lives
// in one hash whose time to live is the retention.
func ExampleStore() {
	srv, err := redislocal.Start(context.Background(), redislocal.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Stop()
	client := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer client.Close()

	store := redisstore.New(client)
	engine := idempotent.New(store, idempotent.WithRetention(time.Hour), idempotent.WithLogger(idempotent.NewLogger(discard{})))
	scope := idempotent.Scope{Principal: "user-1", Method: "POST", Route: "/orders"}
	req := idempotent.Request{Key: "order-42", Scope: scope, Fingerprint: idempotent.Fingerprint("POST", "/orders", []byte(`{"sku":"a"}`))}
	placeOrder := func(context.Context) (string, error) {
		fmt.Println("placing the order")
		return "ord_42", nil
	}
	for range 2 {
		res, err := idempotent.Run(context.Background(), engine, req, idempotent.Spec[string]{}, placeOrder)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(res.Value, "replayed:", res.Replayed())
	}
	ctx := context.Background()
	key := store.Key(scope.ID("order-42"))
	fields, _ := client.HMGet(ctx, key, "status", "data").Result()
	ttl, _ := client.TTL(ctx, key).Result()
	fmt.Println(fields[0], fields[1], ttl.Round(time.Hour))
	// Output:
	// placing the order
	// ord_42 replayed: false
	// ord_42 replayed: true
	// COMPLETED "ord_42" 1h0m0s
}
