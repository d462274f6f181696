//go:build soak

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/internal/faultinject"
	"github.com/idemkit/idemkit/internal/testwait"
)

// TestSoak is `make soak` (build tag soak): POST /payments for IDEMKIT_SOAK_DURATION (default 3m, at most 30m)
// through a second lambdalocal serve whose functions reach DynamoDB Local through a fault proxy, with
//
//   - a steady rate of DynamoDB faults on every phase (throttling, 500s, connection resets, answers lost after
//     DynamoDB applied the write, a few milliseconds of latency), spaced so that the SDK's own retries go through;
//   - the PaymentFunction process SIGKILLed every soakKillEvery, while the proxy holds a payment's completion;
//   - rounds of soakKeys keys x soakCopies racing duplicates, soakInFlight requests in flight.
//
// Clients behave as the contract asks: a 409 or 503 is retried after its Retry-After (capped at a second here,
// an impatient but legal client), a 502 (the crashed invocation) is retried with the same key. A crashed key's
// claim would block it until its lease ends (11 s); the test ends that lease in DynamoDB instead of waiting,
// as TestCrashRecovery does. That is safe because the runner has one PaymentFunction instance: when it is killed,
// the held request is the only invocation that can own a claim, and no other request can claim the key while
// that claim's lease is live.
//
// Asserted at the end: every key has exactly one payment item; every answer for a key is the same 201 body byte
// for byte; the function logged exactly one "executed" per key (a killed invocation logs nothing, so this counts
// every run that finished, the re-runs after kills included), or none for a crashed key whose every answer is a
// replay (the kill landed after the completion committed); no 5xx other than the killed invocations' 502s and
// 503s from exhausted retries (counted). TestMain's final scan then looks for card data and every raw key.
const (
	soakKeys      = 200
	soakCopies    = 4
	soakInFlight  = 32
	soakKillEvery = 20 * time.Second
	soakMaxWait   = time.Second // longest Retry-After a soak client honours
	soakPerKey    = 2 * time.Minute
)

// soakFaults are the steady faults. The first matching rule wins; every rule counts the requests it matches.
func soakFaults() []faultinject.Rule {
	return []faultinject.Rule{
		{Phase: faultinject.PhaseClaim, When: faultinject.Every(41), Fault: faultinject.Fault{Kind: faultinject.Throttle}},
		{Phase: faultinject.PhaseClaim, When: faultinject.Every(97), Fault: faultinject.Fault{Kind: faultinject.ConnReset}},
		{Phase: faultinject.PhaseClaim, When: faultinject.Every(211), Fault: faultinject.Fault{Kind: faultinject.ResponseLost}},
		{Phase: faultinject.PhaseAtomicComplete, When: faultinject.Every(53), Fault: faultinject.Fault{Kind: faultinject.ResponseLost}},
		{Phase: faultinject.PhaseAtomicComplete, When: faultinject.Every(61), Fault: faultinject.Fault{Kind: faultinject.ServerError}},
		{Phase: faultinject.PhaseAtomicComplete, When: faultinject.Every(89), Fault: faultinject.Fault{Kind: faultinject.Throttle}},
		{Phase: faultinject.PhaseRead, When: faultinject.Every(29), Fault: faultinject.Fault{Kind: faultinject.ServerError}},
		{When: faultinject.Every(7), Fault: faultinject.Fault{Kind: faultinject.Latency, Delay: 2 * time.Millisecond}},
	}
}

func soakDuration(t *testing.T) time.Duration {
	v := os.Getenv("IDEMKIT_SOAK_DURATION")
	if v == "" {
		return 3 * time.Minute
	}
	d, err := time.ParseDuration(v)
	require.NoError(t, err, "IDEMKIT_SOAK_DURATION")
	require.True(t, d > 0 && d <= 30*time.Minute, "IDEMKIT_SOAK_DURATION must be in (0, 30m], got %s", d)
	return d
}

type soakKey struct {
	key, body string
	header    http.Header
	mu        sync.Mutex
	answers   []response // final answers, one per copy
	errs      []string
	crashed   int // 502s seen for the key
}

func TestSoak(t *testing.T) {
	duration := soakDuration(t)
	ctx, cancel := context.WithTimeout(context.Background(), duration+5*time.Minute)
	defer cancel()

	// DEBUG makes the engine log one "idempotency" line per request with its outcome and record id.
	cr := startProxiedRunner(t, map[string]string{"AWS_LAMBDA_LOG_LEVEL": "DEBUG"})
	cr.inj.Add(soakFaults()...)
	client := loadHTTPClient(soakInFlight)

	var (
		mu        sync.Mutex
		keys      []*soakKey
		latencies []time.Duration
		statuses  = map[int]int{}
		requests  atomic.Int64
		kills     atomic.Int64
	)
	sendOnce := func(k *soakKey) (response, error) {
		r, took, err := sendTo(client, cr.url, k.header, k.body)
		requests.Add(1)
		mu.Lock()
		latencies = append(latencies, took)
		if err == nil {
			statuses[r.Status]++
		}
		mu.Unlock()
		return r, err
	}
	// request is one client request, retried as the contract asks until it gets an answer that ends it.
	request := func(k *soakKey) {
		deadline := time.Now().Add(soakPerKey)
		for {
			r, err := sendOnce(k)
			if err != nil {
				k.fail("transport: %v", err)
				return
			}
			switch r.Status {
			case http.StatusCreated:
				k.mu.Lock()
				k.answers = append(k.answers, r)
				k.mu.Unlock()
				return
			case http.StatusBadGateway:
				// This client's invocation was killed. Its claim is orphaned: end its lease, then retry.
				k.mu.Lock()
				k.crashed++
				k.mu.Unlock()
				if err := expireLease(ctx, k.key); err != nil {
					k.fail("ending the lease after a crash: %v", err)
					return
				}
			case http.StatusConflict, http.StatusServiceUnavailable:
				secs, err := strconv.Atoi(r.Header.Get("Retry-After"))
				if err != nil || secs < 1 {
					k.fail("%d without a Retry-After of whole seconds: %q %s", r.Status, r.Header.Get("Retry-After"), r.Body)
					return
				}
				select {
				case <-time.After(min(time.Duration(secs)*time.Second, soakMaxWait)):
				case <-ctx.Done():
					k.fail("stopped waiting: %v", ctx.Err())
					return
				}
			default:
				k.fail("status %d: %s", r.Status, r.Body)
				return
			}
			if time.Now().After(deadline) {
				k.fail("no 201 within %s (last answer %d)", soakPerKey, r.Status)
				return
			}
		}
	}

	// The killer: every soakKillEvery, hold the next payment completion at the proxy, SIGKILL the instance,
	// and let the proxy forget the held request (its client is gone, so it is never forwarded).
	stopKiller := make(chan struct{})
	killerDone := make(chan error, 1)
	go func() {
		killerDone <- func() error {
			tick := time.NewTicker(soakKillEvery)
			defer tick.Stop()
			for {
				select {
				case <-stopKiller:
					return nil
				case <-tick.C:
				}
				// The gate stays shut until the test ends: the held completion's client dies with the process,
				// so the proxy drops it and DynamoDB never sees it. Opening it here could forward it first.
				gate := make(chan struct{})
				t.Cleanup(func() { close(gate) })
				held := make(chan faultinject.Call, 1)
				cr.inj.Clear()
				cr.inj.Add(faultinject.Rule{Phase: faultinject.PhaseAtomicComplete, When: faultinject.First(1),
					Fault: faultinject.Fault{Kind: faultinject.Latency, Gate: gate, Held: held}})
				cr.inj.Add(soakFaults()...)
				select {
				case <-held:
				case <-stopKiller:
					cr.inj.Clear()
					cr.inj.Add(soakFaults()...)
					return nil
				}
				pid, err := cr.waitPaymentPID()
				if err == nil {
					err = syscall.Kill(pid, syscall.SIGKILL)
				}
				cr.inj.Clear()
				cr.inj.Add(soakFaults()...)
				if err != nil {
					return fmt.Errorf("kill: %w", err)
				}
				kills.Add(1)
			}
		}()
	}()

	start := time.Now()
	rounds := 0
	for time.Since(start) < duration {
		rounds++
		round := make([]*soakKey, soakKeys)
		for i := range round {
			key := newKey(t)
			round[i] = &soakKey{key: key, header: withKey(key), body: paymentBody(100+i, cardVisa, fmt.Sprintf("soak %d/%d", rounds, i))}
		}
		keys = append(keys, round...)
		slots := make(chan struct{}, soakInFlight)
		var wg sync.WaitGroup
		for _, s := range loadOrder(soakKeys, soakCopies, soakInFlight) {
			slots <- struct{}{}
			wg.Add(1)
			go func(k *soakKey) {
				defer wg.Done()
				defer func() { <-slots }()
				request(k)
			}(round[s.key])
		}
		testwait.Group(t, &wg, "the round's requests")
	}
	elapsed := time.Since(start)
	close(stopKiller)
	require.NoError(t, testwait.Recv(t, killerDone, "the instance killer to stop"))

	// ---- every key: one payment, one body, one finished execution ----
	executed, engineLines, err := executedPerRecord(cr.out.String())
	require.NoError(t, err)
	paymentsByID := map[string]int{}
	items, err := scanAll(ctx, dynamoClient(), "PaymentsTable")
	require.NoError(t, err)
	for _, it := range items {
		if s, ok := it["id"].(*types.AttributeValueMemberS); ok {
			paymentsByID[s.Value]++
		}
	}
	failures, crashedKeys, reruns, killedAfterCommit := 0, 0, 0, 0
	fail := func(format string, args ...any) {
		if failures++; failures <= 20 {
			t.Errorf(format, args...)
		}
	}
	for _, k := range keys {
		for _, e := range k.errs {
			fail("key %s: %s", k.key, e)
		}
		if k.crashed > 0 {
			crashedKeys++
		}
		if len(k.answers) != soakCopies {
			fail("key %s: %d answers of %d", k.key, len(k.answers), soakCopies)
		}
		originals := 0
		for _, a := range k.answers {
			if a.Header.Get("Idempotent-Replayed") == "false" {
				originals++
			}
			if string(a.Body) != string(k.answers[0].Body) {
				fail("key %s: two different 201 bodies:\n%s\n%s", k.key, k.answers[0].Body, a.Body)
			}
		}
		if originals > 1 {
			fail("key %s: %d original answers (the payment ran more than once to completion)", k.key, originals)
		}
		if n := paymentsByID[crashPaymentID(k.key)]; n != 1 {
			fail("key %s: %d payment items", k.key, n)
		}
		switch n := executed[crashScopeID(k.key)]; {
		case n == 1:
		case n == 0 && k.crashed > 0 && originals == 0:
			// The held completion's attempt timed out in the engine, whose retry (a new request, past the
			// killer's rule) committed before the kill landed: the killed process did the one execution and
			// died before logging it. Every answer is then a replay of that commit, and there is one payment.
			killedAfterCommit++
		default:
			fail("key %s (record %s, %d crashes): %d finished executions logged; the engine's lines:\n%s",
				k.key, crashScopeID(k.key), k.crashed, n, strings.Join(engineLines[crashScopeID(k.key)], "\n"))
		}
		if k.crashed > 0 && executed[crashScopeID(k.key)] == 1 {
			reruns++
		}
	}
	for status, n := range statuses {
		switch {
		case status == http.StatusBadGateway:
			assert.Equal(t, int(kills.Load()), n, "502s are the killed invocations only")
		case status >= 500 && status != http.StatusServiceUnavailable:
			fail("%d answers with status %d", n, status)
		}
	}

	faults := map[string]int{}
	for _, r := range cr.inj.Records() {
		if r.Fault != faultinject.None {
			faults[r.Fault.String()+" on "+r.Phase.String()]++
		}
	}
	sortDurations(latencies)
	report := map[string]any{
		"duration_s":          round1(elapsed.Seconds()),
		"rounds":              rounds,
		"keys":                len(keys),
		"http_requests":       requests.Load(),
		"rps":                 round1(float64(requests.Load()) / elapsed.Seconds()),
		"p50_ms":              millis(percentile(latencies, 50)),
		"p99_ms":              millis(percentile(latencies, 99)),
		"max_ms":              millis(percentile(latencies, 100)),
		"statuses":            statuses,
		"kills":               kills.Load(),
		"crashed_keys":        crashedKeys,
		"reruns_after_kill":   reruns,
		"killed_after_commit": killedAfterCommit,
		"faults_injected":     faults,
		"dynamodb_requests":   len(cr.inj.Records()),
	}
	b, _ := json.Marshal(report)
	fmt.Fprintf(os.Stderr, "SOAK %s\n", b)
	t.Logf("soak: %s", b)
	assert.Positive(t, kills.Load(), "the soak must kill at least one instance (duration %s, a kill every %s)", duration, soakKillEvery)
}

func (k *soakKey) fail(format string, args ...any) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.errs = append(k.errs, fmt.Sprintf(format, args...))
}

// sendTo is send (loadutil) against another runner's base URL.
func sendTo(c *http.Client, base string, header http.Header, body string) (response, time.Duration, error) {
	req, err := http.NewRequest(http.MethodPost, base+"/payments", strings.NewReader(body))
	if err != nil {
		return response{}, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	for k, vs := range header {
		req.Header[k] = append([]string(nil), vs...)
	}
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return response{}, time.Since(start), err
	}
	defer resp.Body.Close()
	var sb strings.Builder
	_, err = bufio.NewReader(resp.Body).WriteTo(&sb)
	return response{Status: resp.StatusCode, Header: resp.Header, Body: []byte(sb.String())}, time.Since(start), err
}

// expireLease is endLease for goroutines: a record that is no longer INPROGRESS has moved on, which is fine.
func expireLease(ctx context.Context, key string) error {
	err := leaseEnded(ctx, key)
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return nil
	}
	return err
}

// executedPerRecord counts the engine's "executed" log lines per record id in the runner's output, and keeps every
// engine line per id for the failure messages.
func executedPerRecord(out string) (map[string]int, map[string][]string, error) {
	counts, lines := map[string]int{}, map[string][]string{}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		i := strings.Index(line, "] {")
		if !strings.HasPrefix(line, "[PaymentFunction#") || i < 0 {
			continue
		}
		var entry struct {
			Outcome    string `json:"outcome"`
			ID         string `json:"idempotency_id"`
			StoreError string `json:"store_error"`
		}
		if json.Unmarshal([]byte(line[i+2:]), &entry) != nil || entry.ID == "" {
			continue
		}
		lines[entry.ID] = append(lines[entry.ID], line)
		// A run whose atomic completion failed committed nothing and was answered 503; its retry runs again.
		if entry.Outcome == "executed" && entry.StoreError == "" {
			counts[entry.ID]++
		}
	}
	return counts, lines, sc.Err()
}
