package redisstore_test

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/idempotenttest"
	"github.com/idemkit/idemkit/idempotent/redisstore"
	"github.com/idemkit/idemkit/internal/faultinject"
	"github.com/idemkit/idemkit/internal/redislocal/redistest"
)

// The fault tests run the real engine and store on redis-server through a TCP proxy on loopback that frames the
// Redis protocol, tells the idempotency phases apart by script digest, and breaks chosen requests: the
// connection reset before the request is forwarded, the answer lost after the server applied it, or the request
// held until the client gives up. go-redis's own retries run as configured, and every attempt is counted at the
// proxy. Time is the engine's injected clock: a lease "ends" when the test advances it.

// phase is the step of the idempotency protocol a Redis request carries.
type phase string

const (
	phaseClaim    phase = "claim"
	phaseComplete phase = "complete"
	phaseRelease  phase = "release"
	phaseGet      phase = "get"
	phaseOther    phase = "other"
)

// phaseOf classifies a request by its command and, for scripts, by the digest it names (EVALSHA) or of the body
// it sends (EVAL, the NOSCRIPT fallback).
func phaseOf(req []byte) phase {
	args := redistest.Args(req)
	if len(args) < 2 {
		return phaseOther
	}
	var sha string
	switch strings.ToUpper(string(args[0])) {
	case "EVALSHA":
		sha = string(args[1])
	case "EVAL":
		sum := sha1.Sum(args[1])
		sha = hex.EncodeToString(sum[:])
	case "HMGET":
		return phaseGet
	default:
		return phaseOther
	}
	switch sha {
	case redisstore.ClaimSHA:
		return phaseClaim
	case redisstore.CompleteSHA:
		return phaseComplete
	case redisstore.ReleaseSHA:
		return phaseRelease
	}
	return phaseOther
}

// proxyRule breaks the attempts from..to (1-based, to 0: no end) of one phase.
type proxyRule struct {
	phase    phase
	from, to int
	fault    faultinject.TCPFault
}

// faultProxy is a TCP proxy to the test server with per-phase rules and attempt counts.
type faultProxy struct {
	*faultinject.TCPProxy
	mu     sync.Mutex
	rules  []proxyRule
	counts map[phase]int
}

func newFaultProxy(t *testing.T, target string) *faultProxy {
	t.Helper()
	p := &faultProxy{counts: map[phase]int{}}
	tp, err := faultinject.NewTCPProxy(target, redistest.SplitRESP, p.decide)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tp.Close() })
	p.TCPProxy = tp
	return p
}

func (p *faultProxy) decide(req []byte) faultinject.TCPFault {
	ph := phaseOf(req)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.counts[ph]++
	n := p.counts[ph]
	for _, r := range p.rules {
		if r.phase == ph && n >= r.from && (r.to == 0 || n <= r.to) {
			return r.fault
		}
	}
	return faultinject.TCPFault{}
}

func (p *faultProxy) add(rules ...proxyRule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = append(p.rules, rules...)
}

func (p *faultProxy) clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = nil
}

func (p *faultProxy) count(ph phase) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts[ph]
}

func (p *faultProxy) take() map[phase]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.counts
	p.counts = map[phase]int{}
	return c
}

const faultLease = 30 * time.Second

// faultScenario is one phase x fault case. The expectations describe the first request; what its retries get
// follows from the state it leaves (see TestFaults).
type faultScenario struct {
	name  string
	rules []proxyRule
	// retries is go-redis's MaxRetries for the first request's client: 0 keeps its default (3), -1 disables them.
	retries int
	// readTimeout, when set, is the first request's client's read timeout (default 3 s).
	readTimeout time.Duration
	// deadline, when set, is the first request's context deadline (the invocation's remaining time in Lambda).
	deadline time.Duration
	// failFirst makes the handler fail on its first execution (not recorded: the key is released).
	failFirst bool
	policy    idempotent.LeasePolicy

	ran      int    // executions during the first request
	attempts int    // attempts of the faulted phase on the wire during the first request; 0: not checked
	record   string // the record's status after the first request: "", INPROGRESS or COMPLETED
	storeErr bool   // the first request reported a store failure (in its error, or in its event after the handler ran)
	claimErr bool   // the first request failed before the handler: an *idempotent.StoreError from the claim
}

func lost(ph phase, from, to int) proxyRule {
	return proxyRule{phase: ph, from: from, to: to, fault: faultinject.TCPFault{Kind: faultinject.ResponseLost}}
}

func reset(ph phase) proxyRule {
	return proxyRule{phase: ph, from: 1, fault: faultinject.TCPFault{Kind: faultinject.ConnReset}}
}

func hang(ph phase, from int) proxyRule {
	return proxyRule{phase: ph, from: from, fault: faultinject.TCPFault{Kind: faultinject.Timeout}}
}

// TestFaults injects each fault into each phase of the protocol and follows the key through its retries:
//
//   - the first request's outcome, the attempts on the wire, the executions and the record it leaves;
//   - then, faults cleared, a retry from another instance: a free key runs the handler, a COMPLETED one replays,
//     an INPROGRESS one is refused as in progress without running anything;
//   - for an INPROGRESS key, the lease ends (the injected clock moves past it): LeaseReRun runs the handler
//     again, LeaseRefuse answers outcome-unknown;
//   - finally, the executions across all of these: a handler whose first execution completed never runs again.
func TestFaults(t *testing.T) {
	never := make(chan struct{}) // a gate that stays closed: the answer is held until the client gives up
	t.Cleanup(func() { close(never) })
	scenarios := []faultScenario{
		// Claim. The script was applied and its answer lost; go-redis retries on a new connection and the script
		// finds the claim's own owner token: the claim is won, under either lease policy.
		{name: "claim/response lost once", rules: []proxyRule{lost(phaseClaim, 1, 1)}, ran: 1, attempts: 2, record: "COMPLETED"},
		{name: "claim/response lost once, refuse policy", policy: idempotent.LeaseRefuse, rules: []proxyRule{lost(phaseClaim, 1, 1)}, ran: 1, attempts: 2, record: "COMPLETED"},
		// Applied, then the answer held past the client's read timeout: go-redis retries a timed-out command too.
		{name: "claim/answer late", readTimeout: time.Second, rules: []proxyRule{{phase: phaseClaim, from: 1, to: 1,
			fault: faultinject.TCPFault{Kind: faultinject.ResponseLost, Gate: never}}}, ran: 1, attempts: 2, record: "COMPLETED"},
		// Without client retries the engine sees the failure and refuses the request (503 in apigw) without running
		// the handler; the record it wrote stays INPROGRESS until its lease ends: nothing ran, and nothing runs
		// twice.
		{name: "claim/response lost, no client retries", retries: -1, rules: []proxyRule{lost(phaseClaim, 1, 1)}, attempts: 1, record: "INPROGRESS", claimErr: true, storeErr: true},
		{name: "claim/connection reset", rules: []proxyRule{reset(phaseClaim)}, attempts: 4, claimErr: true, storeErr: true},
		{name: "claim/timeout", deadline: 300 * time.Millisecond, rules: []proxyRule{hang(phaseClaim, 1)}, attempts: 1, claimErr: true, storeErr: true},

		// Completion. The ambiguous case: applied, answer lost. Whether go-redis retries it or the engine does, the
		// script finds exactly this completion and succeeds without writing again.
		{name: "complete/response lost once", rules: []proxyRule{lost(phaseComplete, 1, 1)}, ran: 1, attempts: 2, record: "COMPLETED"},
		{name: "complete/response lost once, no client retries", retries: -1, rules: []proxyRule{lost(phaseComplete, 1, 1)}, ran: 1, attempts: 2, record: "COMPLETED"},
		{name: "complete/answer late", readTimeout: time.Second, rules: []proxyRule{{phase: phaseComplete, from: 1, to: 1,
			fault: faultinject.TCPFault{Kind: faultinject.ResponseLost, Gate: never}}}, ran: 1, attempts: 2, record: "COMPLETED"},
		// Applied, answer lost, then the server unreachable until the completion budget runs out: the failure is
		// reported (logged and counted by the engine) though the record is COMPLETED; retries replay it.
		{name: "complete/response lost, then unreachable", rules: []proxyRule{lost(phaseComplete, 1, 1), {phase: phaseComplete, from: 2,
			fault: faultinject.TCPFault{Kind: faultinject.ConnReset}}}, ran: 1, record: "COMPLETED", storeErr: true},
		// Never applied: the handler's response is returned, the failure reported, and the key stays INPROGRESS
		// until its lease ends.
		{name: "complete/connection reset", rules: []proxyRule{reset(phaseComplete)}, ran: 1, record: "INPROGRESS", storeErr: true},
		{name: "complete/connection reset, refuse policy", policy: idempotent.LeaseRefuse, rules: []proxyRule{reset(phaseComplete)}, ran: 1, record: "INPROGRESS", storeErr: true},
		{name: "complete/timeout", rules: []proxyRule{hang(phaseComplete, 1)}, ran: 1, record: "INPROGRESS", storeErr: true},

		// Release after a failed handler: the key is freed, or stays INPROGRESS until the lease ends.
		{name: "release/response lost once", failFirst: true, rules: []proxyRule{lost(phaseRelease, 1, 1)}, ran: 1, attempts: 2},
		{name: "release/connection reset", failFirst: true, rules: []proxyRule{reset(phaseRelease)}, ran: 1, attempts: 4, record: "INPROGRESS", storeErr: true},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			runFaultScenario(t, sc)
		})
	}
}

func runFaultScenario(t *testing.T, sc faultScenario) {
	proxy := newFaultProxy(t, redistest.Addr(t))
	prefix := redistest.UniquePrefix(t)
	storeOpt := func(o *redisstore.Options) { o.KeyPrefix = prefix }
	faulty := redistest.NewClient(t, func(o *redis.Options) {
		o.Addr = proxy.Addr()
		o.ContextTimeoutEnabled = true
		o.MaxRetries = sc.retries
		if sc.readTimeout > 0 {
			o.ReadTimeout = sc.readTimeout
		}
	})
	clock := idempotenttest.NewClock(time.Now().Truncate(time.Millisecond))
	var runs atomic.Int32
	var events []idempotent.Event
	var mu sync.Mutex
	engineOn := func(client redisstore.Client, budget time.Duration) *idempotent.Engine {
		return idempotent.New(redisstore.New(client, storeOpt),
			idempotent.WithClock(clock), idempotent.WithLease(faultLease), idempotent.WithLeasePolicy(sc.policy),
			idempotent.WithCompletionTimeout(budget), // zero keeps the default (5 s)
			idempotent.WithLogger(idempotent.NewLogger(discard{})),
			idempotent.WithOutcomeHook(func(_ context.Context, ev idempotent.Event) {
				mu.Lock()
				defer mu.Unlock()
				events = append(events, ev)
			}))
	}
	// The first instance talks through the proxy, with a short completion budget where the fault outlasts it (the
	// default, 5 s, elsewhere, so that a busy machine cannot cut short a completion that should succeed); the
	// retries come from another instance on a direct connection with the defaults.
	var budget time.Duration
	for _, r := range sc.rules {
		if r.to == 0 {
			budget = time.Second
		}
	}
	first := engineOn(faulty, budget)
	retry := engineOn(redistest.NewClient(t), 0)
	req := request("fault", `{"amount":2000}`)
	h := func(context.Context) (resp, error) {
		if runs.Add(1) == 1 && sc.failFirst {
			return resp{}, errors.New("handler failed")
		}
		return resp{Status: 201, Body: "paid"}, nil
	}
	store := redisstore.New(redistest.Client(t), storeOpt)
	status := func() string { return rawRecord(t, store, scope.ID(req.Key))["status"] }

	// Load the scripts, so that attempts count the requests of the phase alone (no NOSCRIPT fallback).
	require.NoError(t, redisstore.LoadScripts(context.Background(), redistest.Client(t)))

	proxy.add(sc.rules...)
	ctx, cancel := context.Background(), context.CancelFunc(func() {})
	if sc.deadline > 0 {
		ctx, cancel = context.WithTimeout(ctx, sc.deadline)
	}
	_, err := idempotent.Run(ctx, first, req, idempotent.Spec[resp]{}, h)
	cancel()
	attempts := proxy.count(sc.rules[0].phase)
	t.Logf("first request: error %v; attempts on the wire %v", err, proxy.take())
	proxy.clear()

	mu.Lock()
	require.NotEmpty(t, events)
	ev := events[len(events)-1]
	mu.Unlock()
	assert.Equal(t, int32(sc.ran), runs.Load(), "executions during the first request")
	if sc.attempts > 0 {
		assert.Equal(t, sc.attempts, attempts, "%s attempts on the wire", sc.rules[0].phase)
	}
	assert.Equal(t, sc.record, status(), "record after the first request")
	assert.Equal(t, sc.storeErr, ev.StoreErr != nil || ev.Outcome == idempotent.OutcomeStoreError, "store failure reported: %v / %v", ev.StoreErr, ev.Outcome)
	var se *idempotent.StoreError
	switch {
	case sc.claimErr:
		require.ErrorAs(t, err, &se)
		assert.Equal(t, "claim", se.Op)
		assert.NotErrorIs(t, err, idempotent.ErrPermanent, "a network fault is transient (503, not 500)")
	case sc.failFirst:
		require.EqualError(t, err, "handler failed")
	default:
		require.NoError(t, err, "the handler's response is returned")
	}

	// A retry from another instance, faults cleared.
	ran := runs.Load()
	res, err := idempotent.Run(context.Background(), retry, req, idempotent.Spec[resp]{}, h)
	switch sc.record {
	case "COMPLETED":
		require.NoError(t, err)
		assert.True(t, res.Replayed(), "a completed key replays")
		assert.Equal(t, "paid", res.Value.Body)
		assert.Equal(t, ran, runs.Load(), "never a second execution")
	case "":
		require.NoError(t, err)
		assert.False(t, res.Replayed())
		assert.Equal(t, ran+1, runs.Load(), "a free key runs the handler")
	case "INPROGRESS":
		require.ErrorIs(t, err, idempotent.ErrInProgress, "nothing runs while the lease holds")
		assert.Equal(t, ran, runs.Load())
		clock.Advance(faultLease)
		res, err = idempotent.Run(context.Background(), retry, req, idempotent.Spec[resp]{}, h)
		if sc.policy == idempotent.LeaseRefuse {
			require.ErrorIs(t, err, idempotent.ErrOutcomeUnknown)
			assert.Equal(t, ran, runs.Load())
			return
		}
		require.NoError(t, err, "the lease ended: the handler runs again")
		assert.False(t, res.Replayed())
		assert.Equal(t, ran+1, runs.Load())
	}
	assert.Equal(t, "COMPLETED", status())
	final := runs.Load()
	res, err = idempotent.Run(context.Background(), retry, req, idempotent.Spec[resp]{}, h)
	require.NoError(t, err)
	assert.True(t, res.Replayed())
	assert.Equal(t, final, runs.Load(), "once completed, never again")
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
