package idempotent

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
)

// Outcome is what the engine did with one request.
type Outcome uint8

const (
	// OutcomeExecuted: the key was claimed and the handler ran.
	OutcomeExecuted Outcome = iota + 1
	// OutcomeReplayed: a recorded response was returned; the handler did not run.
	OutcomeReplayed
	// OutcomeInProgress: another invocation holds the key (ErrInProgress).
	OutcomeInProgress
	// OutcomeMismatch: the key was reused with another payload (ErrPayloadMismatch).
	OutcomeMismatch
	// OutcomeMissingKey: a required key was absent (ErrMissingKey).
	OutcomeMissingKey
	// OutcomeInvalidKey: the key broke the grammar (ErrInvalidKey).
	OutcomeInvalidKey
	// OutcomeStoreError: the store failed before the claim, so the handler did not run.
	OutcomeStoreError
	// OutcomeUnknown: the earlier claim's lease ended under LeaseRefuse (ErrOutcomeUnknown).
	OutcomeUnknown
	// OutcomeUnavailable: the key completed but its response could not be kept (ErrResponseUnavailable).
	OutcomeUnavailable
	// OutcomePassThrough: no idempotency applied (optional key absent, or idempotency disabled); the handler ran.
	OutcomePassThrough
)

var outcomeNames = [...]string{
	OutcomeExecuted:    "executed",
	OutcomeReplayed:    "replayed",
	OutcomeInProgress:  "in_progress",
	OutcomeMismatch:    "mismatch",
	OutcomeMissingKey:  "missing_key",
	OutcomeInvalidKey:  "invalid_key",
	OutcomeStoreError:  "store_error",
	OutcomeUnknown:     "outcome_unknown",
	OutcomeUnavailable: "response_unavailable",
	OutcomePassThrough: "pass_through",
}

// String returns the metric name of o, such as "executed" or "in_progress".
func (o Outcome) String() string {
	if int(o) < len(outcomeNames) && outcomeNames[o] != "" {
		return outcomeNames[o]
	}
	return "unknown"
}

// Event describes one request for outcome hooks.
type Event struct {
	Outcome Outcome
	// ID is the hashed record ID (empty when no key applied). Never the raw key.
	ID string
	// Recorded is true when the handler's response was stored for replay.
	Recorded bool
	// StoreErr is a store failure after the handler ran, such as a failed completion or release; it is logged at
	// ERROR and counted as store_error. Unless the claim was released, the key stays claimed until its lease ends.
	StoreErr error
	// Err is the error returned to the caller, if any.
	Err error
	// Duration is the time spent in the engine, handler included.
	Duration time.Duration
	// Waits is the number of store reads made while waiting for a running request's answer (WithWait), and in
	// merged mode (Spec.MergeClaim) the number of writes repeated after meeting a concurrent one. Each is one call.
	Waits int
}

// observe reports ev to the hooks, the metrics and the log. start is when the request entered the engine (zero
// when it did not); the duration is measured only when someone will see it.
func (e *Engine) observe(ctx context.Context, ev Event, start time.Time) {
	level, msg := slog.LevelDebug, "idempotency"
	switch {
	case ev.StoreErr != nil:
		level, msg = slog.LevelError, "idempotency store failed after the handler ran"
	case ev.Outcome == OutcomeStoreError:
		level, msg = slog.LevelError, "idempotency store failed; request refused"
	}
	logged := e.logger.Enabled(ctx, level)
	if !logged && len(e.cfg.hooks) == 0 && e.cfg.metrics == nil {
		return
	}
	if !start.IsZero() {
		ev.Duration = e.cfg.clock.Now().Sub(start)
	}
	for _, h := range e.cfg.hooks {
		h(ctx, ev)
	}
	if e.cfg.metrics != nil {
		e.cfg.metrics.emit(e.cfg.clock.Now(), ev)
	}
	if !logged {
		return
	}
	attrs := []slog.Attr{
		slog.String("outcome", ev.Outcome.String()),
		slog.Duration("duration", ev.Duration),
	}
	if ev.ID != "" {
		attrs = append(attrs, slog.String("idempotency_id", ev.ID))
	}
	if ev.Recorded {
		attrs = append(attrs, slog.Bool("recorded", true))
	}
	if ev.Waits > 0 {
		attrs = append(attrs, slog.Int("waits", ev.Waits))
	}
	switch {
	case ev.StoreErr != nil:
		attrs = append(attrs, slog.String("store_error", ev.StoreErr.Error()))
	case ev.Outcome == OutcomeStoreError:
		attrs = append(attrs, slog.String("error", ev.Err.Error()))
	}
	e.logger.LogAttrs(ctx, level, msg, attrs...)
}

// metricsSink writes CloudWatch Embedded Metric Format documents. Writes are serialised so that concurrent
// requests never interleave their lines.
type metricsSink struct {
	mu        sync.Mutex
	w         io.Writer
	namespace string
	service   string
	level     string // the "level" of every document: see WithMetrics
}

type emfMetric struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}

type emfDirective struct {
	Namespace  string      `json:"Namespace"`
	Dimensions [][]string  `json:"Dimensions"`
	Metrics    []emfMetric `json:"Metrics"`
}

type emfMeta struct {
	Timestamp         int64          `json:"Timestamp"`
	CloudWatchMetrics []emfDirective `json:"CloudWatchMetrics"`
}

func (m *metricsSink) emit(now time.Time, ev Event) {
	doc := map[string]any{}
	names := []string{ev.Outcome.String()}
	if ev.StoreErr != nil && ev.Outcome != OutcomeStoreError {
		names = append(names, OutcomeStoreError.String())
	}
	metrics := make([]emfMetric, 0, len(names))
	for _, n := range names {
		metrics = append(metrics, emfMetric{Name: n, Unit: "Count"})
		doc[n] = 1
	}
	dims := [][]string{{}}
	if m.service != "" {
		dims = [][]string{{"Service"}}
		doc["Service"] = m.service
	}
	doc["level"] = m.level
	doc["timestamp"] = now.UTC().Format(time.RFC3339Nano)
	doc["_aws"] = emfMeta{
		Timestamp:         now.UnixMilli(),
		CloudWatchMetrics: []emfDirective{{Namespace: m.namespace, Dimensions: dims, Metrics: metrics}},
	}
	line, err := json.Marshal(doc)
	if err != nil {
		return
	}
	line = append(line, '\n')
	m.mu.Lock()
	defer m.mu.Unlock()
	_, _ = m.w.Write(line)
}

// NewLogger returns a JSON slog.Logger that Lambda's log-level filtering understands: the level under "level"
// (DEBUG, INFO, WARN, ERROR), the time under "timestamp" in RFC 3339, the message under "message". Its minimum
// level comes from AWS_LAMBDA_LOG_LEVEL (TRACE and DEBUG map to DEBUG; FATAL to ERROR), INFO when unset.
func NewLogger(w io.Writer) *slog.Logger {
	if w == nil {
		w = os.Stdout
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level: levelFromEnv(os.Getenv("AWS_LAMBDA_LOG_LEVEL")),
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) > 0 {
				return a
			}
			switch a.Key {
			case slog.TimeKey:
				a.Key = "timestamp"
				a.Value = slog.StringValue(a.Value.Time().UTC().Format(time.RFC3339Nano))
			case slog.MessageKey:
				a.Key = "message"
			}
			return a
		},
	}))
}

// metricsLevel is the level that Lambda's filter at AWS_LAMBDA_LOG_LEVEL v lets through and that still reads as
// routine: INFO, unless the filter is stricter than INFO, in which case its own level.
func metricsLevel(v string) string {
	switch strings.ToUpper(strings.TrimSpace(v)) {
	case "WARN", "WARNING":
		return "WARN"
	case "ERROR":
		return "ERROR"
	case "FATAL":
		return "FATAL"
	default:
		return "INFO"
	}
}

func levelFromEnv(v string) slog.Level {
	switch strings.ToUpper(strings.TrimSpace(v)) {
	case "TRACE", "DEBUG":
		return slog.LevelDebug
	case "WARN", "WARNING":
		return slog.LevelWarn
	case "ERROR", "FATAL":
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}
