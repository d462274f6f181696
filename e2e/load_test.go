package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/idemkit/idemkit/internal/testwait"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	loadKeys     = 500
	loadCopies   = 4  // each key is sent this many times with the same body
	loadInFlight = 48 // requests in flight at once (>= 32)
	// A client retries a 409 after its Retry-After, at most this many attempts in all and never waiting longer
	// than loadMaxRetryAfter: the lease behind Retry-After ends at the function timeout (10 s) plus a 1 s margin.
	loadMaxAttempts   = 5
	loadMaxRetryAfter = 15 * time.Second
)

// volatileHeaders differ between any two answers of API Gateway, replay or not: the date and the per-request id
// (lambdalocal's X-Amzn-Requestid, which is also the Lambda request id). Idempotent-Replayed differs by design
// (false on the original, true on a replay). Every other header of a replay must equal the original's.
var volatileHeaders = []string{"Date", "X-Amzn-Requestid", "Idempotent-Replayed"}

type loadSend struct {
	key  int // index into the keys
	copy int // 0..loadCopies-1, in sending order of the key's copies
}

type loadResult struct {
	final    response // the answer that ended the request: 201 once all 409s were retried
	attempts int
	err      error
}

// TestLoad: 500 keys x 4 identical POST /payments each, 48 in flight, through lambdalocal on DynamoDB Local. Each
// key's copies race each other; every key must charge exactly once and every duplicate must get the original
// answer byte for byte. A 409 (the original still running) is retried after its Retry-After, as a client would.
//
// Reported (t.Log and a `LOAD {...}` JSON line on stderr): rps is the 2000 first attempts divided by the load
// phase (from the first request sent to the last first attempt answered; retries after Retry-After end later and
// are in total_ms); p50/p99/max are over every HTTP attempt, 409s and retries included.
func TestLoad(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	keys := make([]string, loadKeys)
	bodies := make([]string, loadKeys)
	headers := make([]http.Header, loadKeys)
	for i := range keys {
		keys[i] = newKey(t)
		headers[i] = withKey(keys[i]) // remembered for the final scan for raw keys
		bodies[i] = paymentBody(1000+i, cardVisa, fmt.Sprintf("load %d", i))
	}
	order := loadOrder(loadKeys, loadCopies, loadInFlight)
	require.Len(t, order, loadKeys*loadCopies)

	client := loadHTTPClient(loadInFlight)
	var (
		slots      = make(chan struct{}, loadInFlight)
		inFlight   atomic.Int64
		maxFlight  atomic.Int64
		mu         sync.Mutex
		latencies  []time.Duration
		firstSum   time.Duration // latencies of the first attempts, for the mean in flight
		statuses   = map[int]int{}
		bad409     []string
		results    = make([][]loadResult, loadKeys)
		wg         sync.WaitGroup
		firstPass  sync.WaitGroup
		start      time.Time
		acquireErr error
	)
	for i := range results {
		results[i] = make([]loadResult, loadCopies)
	}
	acquire := func() error {
		select {
		case slots <- struct{}{}:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	// attempt sends one request in a slot already acquired and releases it.
	attempt := func(s loadSend, first bool) (response, error) {
		n := inFlight.Add(1)
		for m := maxFlight.Load(); n > m && !maxFlight.CompareAndSwap(m, n); m = maxFlight.Load() {
		}
		r, took, err := send(client, http.MethodPost, "/payments", headers[s.key], bodies[s.key])
		inFlight.Add(-1)
		<-slots
		mu.Lock()
		defer mu.Unlock()
		latencies = append(latencies, took)
		if first {
			firstSum += took
		}
		if err == nil {
			statuses[r.Status]++
			if r.Status == http.StatusConflict && r.Header.Get("Content-Type") != "application/problem+json" {
				bad409 = append(bad409, fmt.Sprintf("Content-Type %q: %s", r.Header.Get("Content-Type"), r.Body))
			}
		}
		return r, err
	}
	// request is one client request: its first attempt (in the slot the dispatcher took for it), then, while
	// the answer is 409, a wait for Retry-After that holds no slot and another attempt.
	request := func(s loadSend) (res loadResult) {
		res.attempts = 1
		res.final, res.err = attempt(s, true)
		firstPass.Done()
		for res.err == nil && res.final.Status == http.StatusConflict && res.attempts < loadMaxAttempts {
			var wait time.Duration
			if wait, res.err = retryAfter(res.final); res.err != nil {
				break
			}
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				res.err = ctx.Err()
				return res
			}
			if res.err = acquire(); res.err != nil {
				break
			}
			res.attempts++
			res.final, res.err = attempt(s, false)
		}
		return res
	}

	// The dispatcher takes a slot per first attempt in the shuffled order, so first attempts go out in that
	// order and loadInFlight requests are in flight while there is work.
	start = time.Now()
	for _, s := range order {
		if acquireErr = acquire(); acquireErr != nil {
			break
		}
		wg.Add(1)
		firstPass.Add(1)
		go func() {
			defer wg.Done()
			results[s.key][s.copy] = request(s)
		}()
	}
	testwait.Group(t, &firstPass, "every first attempt")
	loadPhase := time.Since(start)
	testwait.Group(t, &wg, "every request and its retries")
	total := time.Since(start)
	require.NoError(t, acquireErr, "the load did not finish within its deadline")

	// ---- the answers ----
	assert.Empty(t, bad409, "409 answers are problem+json")
	for status, n := range statuses {
		assert.Less(t, status, 500, "%d answers with status %d: no 5xx under load", n, status)
		assert.Contains(t, []int{http.StatusCreated, http.StatusConflict}, status, "%d answers with status %d", n, status)
	}
	failures := 0
	fail := func(format string, args ...any) {
		if failures++; failures <= 10 {
			t.Errorf(format, args...)
		}
	}
	ids := map[string]int{} // payment id -> key
	retried := 0
	for k := range results {
		var original *response
		for c := range results[k] {
			res := &results[k][c]
			if res.attempts > 1 {
				retried++
			}
			switch {
			case res.err != nil:
				fail("key %d copy %d: %v", k, c, res.err)
			case res.final.Status != http.StatusCreated:
				fail("key %d copy %d: status %d after %d attempts: %s", k, c, res.final.Status, res.attempts, res.final.Body)
			case res.final.Header.Get("Idempotent-Replayed") == "false":
				if original != nil {
					fail("key %d: two answers with Idempotent-Replayed: false (the payment ran twice):\n%s\n%s", k, original.Body, res.final.Body)
				}
				original = &res.final
			case res.final.Header.Get("Idempotent-Replayed") != "true":
				fail("key %d copy %d: Idempotent-Replayed %q", k, c, res.final.Header.Get("Idempotent-Replayed"))
			}
		}
		if original == nil {
			fail("key %d: no original answer (Idempotent-Replayed: false) among its %d copies", k, loadCopies)
			continue
		}
		var p struct {
			ID          string `json:"id"`
			Amount      int    `json:"amount"`
			Description string `json:"description"`
		}
		if err := json.Unmarshal(original.Body, &p); err != nil || !paymentIDPattern.MatchString(p.ID) ||
			p.Amount != 1000+k || p.Description != fmt.Sprintf("load %d", k) {
			fail("key %d: the original is not this key's payment: %s", k, original.Body)
			continue
		}
		if other, dup := ids[p.ID]; dup {
			fail("keys %d and %d got the same payment %s", other, k, p.ID)
		}
		ids[p.ID] = k
		for c := range results[k] {
			r := results[k][c].final
			if r.Status != http.StatusCreated || r.Header.Get("Idempotent-Replayed") != "true" {
				continue
			}
			if string(r.Body) != string(original.Body) {
				fail("key %d copy %d: replayed body differs from the original:\n%s\n%s", k, c, original.Body, r.Body)
			}
			if a, b := stableHeaders(*original), stableHeaders(r); !assert.ObjectsAreEqual(a, b) {
				fail("key %d copy %d: replayed headers differ from the original's (apart from %v):\n%v\n%v", k, c, volatileHeaders, a, b)
			}
		}
	}
	if r := results[0][0].final; r.Header != nil {
		names := make([]string, 0, len(r.Header))
		for n := range stableHeaders(r) {
			names = append(names, n)
		}
		sort.Strings(names)
		t.Logf("replays compared with their original: status, body bytes, headers %v (not %v)", names, volatileHeaders)
	}
	if failures > 10 {
		t.Errorf("... and %d more failures", failures-10)
	}

	// ---- the stored payments: exactly one per key ----
	items, err := scanAll(ctx, dynamoClient(), "PaymentsTable")
	require.NoError(t, err)
	stored := map[string]int{}
	for _, it := range items {
		if s, ok := it["id"].(*types.AttributeValueMemberS); ok {
			if _, ours := ids[s.Value]; ours {
				stored[s.Value]++
			}
		}
	}
	assert.Len(t, ids, loadKeys, "one distinct payment id per key")
	for id, k := range ids {
		if stored[id] != 1 {
			fail("key %d: %d PaymentsTable items with id %s, want exactly 1", k, stored[id], id)
		}
	}

	// ---- the figures ----
	sortDurations(latencies)
	mu.Lock()
	report := map[string]any{
		"test":           "TestLoad",
		"requests":       loadKeys * loadCopies,
		"keys":           loadKeys,
		"copies":         loadCopies,
		"in_flight":      loadInFlight,
		"max_in_flight":  maxFlight.Load(),
		"mean_in_flight": round1(float64(firstSum) / float64(loadPhase)),
		"attempts":       len(latencies),
		"status_201":     statuses[http.StatusCreated],
		"status_409":     statuses[http.StatusConflict],
		"retried":        retried,
		"status_5xx":     count5xx(statuses),
		"load_ms":        loadPhase.Milliseconds(),
		"total_ms":       total.Milliseconds(),
		"rps":            round1(float64(loadKeys*loadCopies) / loadPhase.Seconds()),
		"p50_ms":         millis(percentile(latencies, 50)),
		"p99_ms":         millis(percentile(latencies, 99)),
		"max_ms":         millis(latencies[len(latencies)-1]),
	}
	mu.Unlock()
	line, err := json.Marshal(report)
	require.NoError(t, err)
	t.Logf("%d requests (%d keys x %d) with %d in flight (max %d): %.0f req/s over %s; latency p50 %.1f ms, p99 %.1f ms, max %.1f ms; %d answers 409, retried after Retry-After by %d requests; all done in %s",
		loadKeys*loadCopies, loadKeys, loadCopies, loadInFlight, maxFlight.Load(), report["rps"], loadPhase.Round(time.Millisecond),
		report["p50_ms"], report["p99_ms"], report["max_ms"], statuses[http.StatusConflict], retried, total.Round(time.Millisecond))
	fmt.Fprintf(os.Stderr, "LOAD %s\n", line)
}

// stableHeaders are an answer's headers without the volatile ones.
func stableHeaders(r response) http.Header {
	h := r.Header.Clone()
	for _, v := range volatileHeaders {
		h.Del(v)
	}
	return h
}

func count5xx(statuses map[int]int) int {
	n := 0
	for s, c := range statuses {
		if s >= 500 {
			n += c
		}
	}
	return n
}

func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }

// retryAfter reads a 409's Retry-After: whole seconds, at least 1, bounded.
func retryAfter(r response) (time.Duration, error) {
	v := r.Header.Get("Retry-After")
	secs, err := strconv.Atoi(v)
	if err != nil || secs < 1 {
		return 0, fmt.Errorf("409 with Retry-After %q: want whole seconds >= 1", v)
	}
	if d := time.Duration(secs) * time.Second; d <= loadMaxRetryAfter {
		return d, nil
	}
	return 0, fmt.Errorf("409 with Retry-After %q: over the %s a client here waits", v, loadMaxRetryAfter)
}

// loadOrder is the sending order: the keys in random order, cut into windows of inFlight/copies keys whose
// copies are shuffled together. Every key's copies are then within one window of requests in flight, so they
// race each other; a shuffle of the whole 2000 would put a key's copies ~500 requests apart, where the first is
// long finished before its duplicates arrive.
func loadOrder(keys, copies, inFlight int) []loadSend {
	perm := rand.Perm(keys)
	window := max(inFlight/copies, 1)
	var order []loadSend
	for lo := 0; lo < keys; lo += window {
		var w []loadSend
		for _, k := range perm[lo:min(lo+window, keys)] {
			for c := range copies {
				w = append(w, loadSend{key: k, copy: c})
			}
		}
		rand.Shuffle(len(w), func(i, j int) { w[i], w[j] = w[j], w[i] })
		order = append(order, w...)
	}
	// The copy number is the order in which a key's copies are sent.
	seen := make([]int, keys)
	for i := range order {
		order[i].copy = seen[order[i].key]
		seen[order[i].key]++
	}
	return order
}

// TestLoadOrder: every key is sent copies times, numbered in sending order, all within one window of inFlight
// consecutive requests, and the order is shuffled.
func TestLoadOrder(t *testing.T) {
	const keys, copies, inFlight = 50, 4, 48
	order := loadOrder(keys, copies, inFlight)
	require.Len(t, order, keys*copies)
	first := map[int]int{}
	next := map[int]int{}
	for i, s := range order {
		assert.Equal(t, next[s.key], s.copy, "copies of key %d are numbered in sending order", s.key)
		next[s.key]++
		if s.copy == 0 {
			first[s.key] = i
		} else {
			assert.Less(t, i-first[s.key], inFlight, "copy %d of key %d is in the window of its first copy", s.copy, s.key)
		}
	}
	for k := range keys {
		assert.Equal(t, copies, next[k], "key %d", k)
	}
	assert.NotEqual(t, loadOrder(keys, copies, inFlight), loadOrder(keys, copies, inFlight), "shuffled")
}
