package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/idempotent/redisstore"
	"github.com/idemkit/idemkit/internal/faultinject"
	"github.com/idemkit/idemkit/internal/redislocal"
	"github.com/idemkit/idemkit/internal/redislocal/redistest"
)

// redisRig is a redis-server of the test's own behind a TCP fault proxy, and a runner whose PaymentFunction keeps
// its idempotency records there (IDEMPOTENCY_STORE=redis, REDIS_URL at the proxy) while its payments stay in
// DynamoDB Local, reached through the runner's DynamoDB proxy.
type redisRig struct {
	*crashRunner
	rdb   *redis.Client
	proxy *faultinject.TCPProxy
}

func startRedisRig(t *testing.T) *redisRig {
	t.Helper()
	srv, err := redislocal.Start(context.Background(), redislocal.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Stop() })
	proxy, err := faultinject.NewTCPProxy(srv.Addr(), redistest.SplitRESP, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = proxy.Close() })
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	cr := startProxiedRunner(t, map[string]string{"IDEMPOTENCY_STORE": "redis", "REDIS_URL": "redis://" + proxy.Addr()})
	return &redisRig{crashRunner: cr, rdb: rdb, proxy: proxy}
}

// record reads the key's idempotency record in Redis as stored.
func (r *redisRig) record(t *testing.T, key string) map[string]string {
	t.Helper()
	m, err := r.rdb.HGetAll(context.Background(), redisstore.DefaultKeyPrefix+crashScopeID(key)).Result()
	require.NoError(t, err)
	return m
}

// idempotencyTableCalls counts the requests the functions made to the DynamoDB idempotency table.
func (r *redisRig) idempotencyTableCalls() int {
	n := 0
	for _, rec := range r.inj.Records() {
		if rec.Phase != faultinject.PhaseOther {
			n++
		}
	}
	return n
}

// TestPaymentsOnRedis runs POST /payments with its idempotency records in Redis: the contract's rows hold, the
// records are in Redis and none in the idempotency table, and a crash between the payment's write and the
// record's completion re-runs into the same payment rather than a second one.
func TestPaymentsOnRedis(t *testing.T) {
	rig := startRedisRig(t)

	t.Run("FirstDuplicateMismatch", func(t *testing.T) {
		key := newKey(t)
		rememberKey(key)
		first := rig.post(t, key)
		assertCreated(t, first, 2000, "crash")
		assertReplay(t, first, rig.post(t, key))
		rec := rig.record(t, key)
		assert.Equal(t, "COMPLETED", rec["status"])
		assert.JSONEq(t, string(first.Body), jsonBody(t, rec["data"]), "the recorded response")
		assert.Equal(t, "", crashRecordStatus(t, key), "nothing in the idempotency table")
		assert.Equal(t, 1, crashPayments(t, key))

		req, err := http.NewRequest(http.MethodPost, rig.url+"/payments", strings.NewReader(paymentBody(2500, cardVisa, "crash")))
		require.NoError(t, err)
		req.Header.Set("Idempotency-Key", key)
		resp, err := rig.client.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		assert.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode, "same key, other payload")
		assert.Zero(t, rig.idempotencyTableCalls(), "the idempotency table is never called: %v", rig.inj.Counts())
	})

	t.Run("CrashBeforeTheCompletion", func(t *testing.T) {
		key := newKey(t)
		rememberKey(key)
		redisKey := []byte(redisstore.DefaultKeyPrefix + crashScopeID(key))
		// Hold the key's second script call (the completion; the first is the claim) until the connection ends.
		held := make(chan struct{}, 1)
		var mu sync.Mutex
		scripts := 0
		rig.proxy.SetRule(func(req []byte) faultinject.TCPFault {
			args := redistest.Args(req)
			if len(args) < 4 || !strings.HasPrefix(strings.ToUpper(string(args[0])), "EVAL") || string(args[3]) != string(redisKey) {
				return faultinject.TCPFault{}
			}
			mu.Lock()
			defer mu.Unlock()
			if scripts++; scripts == 2 {
				return faultinject.TCPFault{Kind: faultinject.Timeout, Held: held}
			}
			return faultinject.TCPFault{}
		})
		pid := rig.paymentPID(t)
		answer := make(chan response, 1)
		failed := make(chan error, 1)
		go func() {
			r, err := rig.send(key)
			if err != nil {
				failed <- err
				return
			}
			answer <- r
		}()
		select {
		case <-held:
		case err := <-failed:
			t.Fatalf("the first request ended before its completion was held: %v", err)
		case r := <-answer:
			t.Fatalf("the first request ended before its completion was held: %d %s", r.Status, r.Body)
		case <-time.After(30 * time.Second):
			t.Fatalf("no completion reached the proxy within 30s\n%s", rig.out.String())
		}
		require.NoError(t, syscall.Kill(pid, syscall.SIGKILL), "kill PaymentFunction pid %d", pid)
		select {
		case r := <-answer:
			require.Equal(t, http.StatusBadGateway, r.Status, "body %s", r.Body)
		case err := <-failed:
			t.Fatalf("the in-flight request failed: %v", err)
		case <-time.After(30 * time.Second):
			t.Fatal("no answer to the in-flight request within 30s of the kill")
		}
		rig.proxy.SetRule(nil)

		// The payment was written before the completion (Redis cannot commit it with the record); the record is
		// INPROGRESS and holds the key while its lease lasts.
		assert.Equal(t, "INPROGRESS", rig.record(t, key)["status"])
		assert.Equal(t, 1, crashPayments(t, key), "the payment was written directly")
		r := rig.post(t, key)
		assertProblem(t, r, http.StatusConflict)

		// The lease ends (rewritten in the record: the functions run on their own clock); the re-run finds the
		// payment on its pre-charge read and answers with it instead of charging again.
		rec := rig.record(t, key)
		require.Equal(t, "INPROGRESS", rec["status"])
		require.NoError(t, rig.rdb.HSet(context.Background(), string(redisKey), "in_progress_expiration",
			strconv.FormatInt(time.Now().Add(-time.Second).UnixMilli(), 10)).Err())
		rerun := rig.post(t, key)
		id := assertCreated(t, rerun, 2000, "crash")
		assert.Equal(t, crashPaymentID(key), id, "the payment of the crashed run")
		assertReplay(t, rerun, rig.post(t, key))
		assert.Equal(t, 1, crashPayments(t, key), "one payment for the key")
		assert.Equal(t, "COMPLETED", rig.record(t, key)["status"])
	})
}

// jsonBody extracts the body of a recorded API Gateway response.
func jsonBody(t *testing.T, data string) string {
	t.Helper()
	var rec struct {
		Body string `json:"body"`
	}
	require.NoError(t, json.Unmarshal([]byte(data), &rec), "recorded response %s", data)
	return rec.Body
}
