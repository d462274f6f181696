package idempotent

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strconv"
	"time"
)

// Clock tells the time. Inject one with WithClock so tests can move time instead of sleeping.
type Clock interface {
	Now() time.Time
}

// Sleeper lets time pass. When the Clock given to WithClock also implements Sleeper, the engine's waits
// (WithWait, and the backoff between merged writes that met a concurrent one) go through it, so a test clock can
// move its time instead of sleeping (idempotenttest.Clock does). Otherwise the engine sleeps on a real timer.
type Sleeper interface {
	// Sleep returns once d has passed, or with ctx's error when ctx ends first.
	Sleep(ctx context.Context, d time.Duration) error
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) Sleep(ctx context.Context, d time.Duration) error { return sleep(ctx, d) }

// sleep waits d on a real timer, or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// LeasePolicy says what happens to a key whose INPROGRESS claim outlived its lease, which means the invocation
// that held it crashed or timed out without completing or releasing it.
type LeasePolicy uint8

const (
	// LeaseReRun lets the next request claim the key and run the handler again (the default). Choose it when the
	// handler's side effects are themselves safe to repeat or are guarded (for example by a conditional write).
	LeaseReRun LeasePolicy = iota
	// LeaseRefuse answers ErrOutcomeUnknown until the record expires: nobody can tell whether the first run's
	// side effects happened, so nothing runs again automatically.
	LeaseRefuse
)

// String returns "rerun" or "refuse".
func (p LeasePolicy) String() string {
	if p == LeaseRefuse {
		return "refuse"
	}
	return "rerun"
}

// DisableEnv is the environment variable that, set to a true value ("1", "true"), turns idempotency off: handlers
// run on every request and nothing is stored. It is meant for local experiments and tests, never for production.
const DisableEnv = "IDEMPOTENCY_DISABLED"

// Option configures an Engine.
type Option func(*config)

type config struct {
	retention    time.Duration
	lease        time.Duration
	leaseMargin  time.Duration
	leasePolicy  LeasePolicy
	clock        Clock
	cacheSize    int
	cacheTTL     time.Duration
	logger       *slog.Logger
	metrics      *metricsSink
	hooks        []func(context.Context, Event)
	disabled     bool
	maxAttempts  int
	completeTime time.Duration
	wait         time.Duration
}

func defaultConfig() config {
	disabled, _ := strconv.ParseBool(os.Getenv(DisableEnv))
	return config{
		retention:    24 * time.Hour,
		lease:        time.Minute,
		leaseMargin:  time.Second,
		clock:        systemClock{},
		disabled:     disabled,
		maxAttempts:  3,
		completeTime: 5 * time.Second,
	}
}

// WithRetention sets how long a completed response is replayed. Default 24 h. Zero or less keeps the default.
func WithRetention(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.retention = d
		}
	}
}

// WithLease sets the lease of a claim made without a context deadline. With a deadline (as in Lambda, where it is
// the invocation's end) the lease ends at the deadline plus the margin. Default one minute.
func WithLease(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.lease = d
		}
	}
}

// WithLeaseMargin sets the time added to the context deadline to form the lease end, covering clock skew
// between the function and other instances. Default one second; negative keeps the default.
func WithLeaseMargin(d time.Duration) Option {
	return func(c *config) {
		if d >= 0 {
			c.leaseMargin = d
		}
	}
}

// WithLeasePolicy chooses what happens once a claim's lease has ended without completion. Default LeaseReRun.
func WithLeasePolicy(p LeasePolicy) Option { return func(c *config) { c.leasePolicy = p } }

// WithClock injects the clock used for leases, retention and cache expiry. Default: the system clock.
func WithClock(clk Clock) Option {
	return func(c *config) {
		if clk != nil {
			c.clock = clk
		}
	}
}

// WithLocalCache keeps up to size completed records in this instance's memory for at most ttl (and never past the
// record's own expiry), so a duplicate that lands on the same warm instance is answered without a store call.
// Default: no cache; size zero or less means none. A ttl of zero or less bounds an entry only by its record's
// expiry (the retention). A cached replay can miss a record deleted from the store by an operator; give a short
// ttl if that matters.
func WithLocalCache(size int, ttl time.Duration) Option {
	return func(c *config) {
		c.cacheSize = size
		c.cacheTTL = ttl
	}
}

// WithLogger sets the structured logger. Default: slog.Default(). NewLogger makes one that Lambda's log-level
// filtering understands.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.logger = l
		}
	}
}

// WithMetrics writes one CloudWatch Embedded Metric Format document per request to w (os.Stdout in Lambda), with
// a count per outcome under namespace and, when service is not empty, a "Service" dimension.
//
// Each document also carries "level" and "timestamp" (RFC 3339) so that Lambda's application log-level filter
// lets it through: Lambda treats a JSON line without a valid level, or without a valid timestamp, as INFO and
// drops it when ApplicationLogLevel is WARN or stricter, and a dropped line is a lost metric. The level is INFO,
// or the stricter level AWS_LAMBDA_LOG_LEVEL names (WARN, ERROR, FATAL), read when the option is applied.
func WithMetrics(w io.Writer, namespace, service string) Option {
	return func(c *config) {
		c.metrics = &metricsSink{w: w, namespace: namespace, service: service,
			level: metricsLevel(os.Getenv("AWS_LAMBDA_LOG_LEVEL"))}
	}
}

// WithOutcomeHook calls fn after each request with what the engine decided. fn must be quick and safe for
// concurrent use; it runs on the request's goroutine.
func WithOutcomeHook(fn func(context.Context, Event)) Option {
	return func(c *config) {
		if fn != nil {
			c.hooks = append(c.hooks, fn)
		}
	}
}

// WithDisabled turns idempotency off (true) or on (false), overriding the IDEMPOTENCY_DISABLED variable.
func WithDisabled(disabled bool) Option { return func(c *config) { c.disabled = disabled } }

// WithMaxAttempts bounds how often the engine claims again when the record changes between store calls.
// Default 3.
func WithMaxAttempts(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.maxAttempts = n
		}
	}
}

// WithCompletionTimeout bounds the time spent recording a response (retries included) once the handler has
// returned, even if the request's context is already cancelled. Default five seconds.
func WithCompletionTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.completeTime = d
		}
	}
}

// DefaultWait is the wait bound the example service uses (WithWait): long enough for a first request of a fast
// route to finish while a duplicate waits, short enough that a slow one is answered 409 early. Chosen from
// measurements on DynamoDB Local through the example service; see docs/DESIGN.md, "Waiting for the answer".
const DefaultWait = 2 * time.Second

// WithWait makes a request that finds its key held by a running invocation wait for that invocation's answer and
// replay it, instead of answering ErrInProgress at once. The engine reads the record with consistent reads, backing
// off with jitter (each read is one store call), for at most bound and never past the request's deadline minus a
// reserve for answering; only when the bound is reached is the answer ErrInProgress. If the holder releases the key
// (its handler failed) or its lease ends, the waiting request claims the key itself. Default: no waiting. Zero or
// less turns waiting off; DefaultWait is the measured choice.
func WithWait(bound time.Duration) Option {
	return func(c *config) { c.wait = max(bound, 0) }
}
