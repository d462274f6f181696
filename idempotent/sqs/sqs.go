package sqs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/aws/aws-lambda-go/events"

	"github.com/idemkit/idemkit/idempotent"
)

// Option configures Batch.
type Option func(*config)

type config struct {
	keyField    string
	keyFunc     func(context.Context, events.SQSMessage) (string, error)
	keyOptional bool
	name        string
	fields      []string
	concurrency int
	skipGroup   bool
	logger      *slog.Logger
}

// WithKeyField takes the key from a dot-separated path of the JSON message body, such as "orderId" or
// "detail.id", so that copies of one logical message sent separately (with different message ids) are
// de-duplicated. A missing field makes the message fail unless WithKeyOptional is given. Default: the message id.
func WithKeyField(path string) Option {
	return func(c *config) { c.keyField, c.keyFunc = path, nil }
}

// WithKeyFunc computes the key from the message; "" means the message carries none. Default: the message id.
func WithKeyFunc(fn func(ctx context.Context, m events.SQSMessage) (string, error)) Option {
	return func(c *config) { c.keyFunc, c.keyField = fn, "" }
}

// WithKeyOptional runs the handler without de-duplication for a message without a key, instead of reporting it as
// failed. Default: a key is required (always true of the default message-id key).
func WithKeyOptional() Option { return func(c *config) { c.keyOptional = true } }

// WithName scopes keys to name instead of the queue ARN (eventSourceARN). Use it when several queues feed one
// logical stream whose duplicates must be recognised across queues, or to keep records valid when a queue is
// replaced. Default: the message's eventSourceARN.
func WithName(name string) Option { return func(c *config) { c.name = name } }

// WithPayloadFields fingerprints only the given dot-separated paths of a JSON body (see idempotent.SelectFields)
// instead of the whole body. Default: the whole body, canonicalised when it is JSON.
func WithPayloadFields(paths ...string) Option {
	return func(c *config) { c.fields = append(c.fields, paths...) }
}

// WithConcurrency processes up to n messages of a standard-queue batch at once. Batches from FIFO queues are
// always processed one message at a time, in order. Default 1: sequential, so a standard queue's batch is also
// handled in the order received and a handler need not be safe for concurrent use.
func WithConcurrency(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.concurrency = n
		}
	}
}

// WithSkipGroupOnError changes the FIFO rule: after a message fails, only the later messages of its message group
// are reported as failed without being processed, and other groups go on. Default: the rule AWS documents for
// FIFO partial batch responses, which stops at the first failure and reports every later message of the batch.
// Ordering is per message group, so both keep it; this option trades a longer batch for fewer redeliveries.
func WithSkipGroupOnError() Option { return func(c *config) { c.skipGroup = true } }

// WithLogger sets where failures of single messages are logged. Default: slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.logger = l
		}
	}
}

// handlerError marks the handler's own error, so it is never mistaken for one of the engine's.
type handlerError struct{ err error }

func (e *handlerError) Error() string { return e.err.Error() }
func (e *handlerError) Unwrap() error { return e.err }

// Batch returns an SQS event handler that runs h once per message key and reports partial batch failures. The
// event source mapping must have FunctionResponseTypes: ReportBatchItemFailures; without it Lambda ignores the
// response and deletes the whole batch when the function returns without an error.
//
// Each message runs through idempotent.Run with its own key; the package documentation lists which messages are
// reported as failed. A message whose key was already completed is skipped as a success. A panic in h releases
// the message's key and propagates, failing the invocation and so the whole batch (messages already completed
// are then skipped on redelivery).
func Batch(e *idempotent.Engine, h func(context.Context, events.SQSMessage) error,
	opts ...Option) func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
	cfg := &config{concurrency: 1, logger: slog.Default()}
	for _, o := range opts {
		o(cfg)
	}
	return func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		failed := make([]bool, len(ev.Records))
		if isFIFO(ev.Records) || cfg.concurrency <= 1 {
			cfg.sequential(ctx, e, h, ev.Records, failed)
		} else {
			cfg.concurrent(ctx, e, h, ev.Records, failed)
		}
		resp := events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{}}
		for i, f := range failed {
			if f {
				resp.BatchItemFailures = append(resp.BatchItemFailures,
					events.SQSBatchItemFailure{ItemIdentifier: ev.Records[i].MessageId})
			}
		}
		return resp, nil
	}
}

// sequential handles the messages in order. For FIFO queues it applies the partial-failure rule: once a message
// fails, later messages (of the batch, or of its group with WithSkipGroupOnError) are not processed but reported,
// so that none of them overtakes the failed one.
func (c *config) sequential(ctx context.Context, e *idempotent.Engine, h func(context.Context, events.SQSMessage) error,
	msgs []events.SQSMessage, failed []bool) {
	stopped := false
	failedGroups := map[string]bool{}
	for i, m := range msgs {
		fifo := isFIFOMessage(m)
		group := m.Attributes["MessageGroupId"]
		if fifo && (stopped || failedGroups[group]) {
			failed[i] = true
			continue
		}
		failed[i] = !c.process(ctx, e, h, m)
		if failed[i] && fifo {
			if c.skipGroup {
				failedGroups[group] = true
			} else {
				stopped = true
			}
		}
	}
}

// concurrent handles the messages of a standard queue with up to c.concurrency workers. A panic in a worker is
// carried back to the caller's goroutine, where the Lambda runtime reports it like any handler panic.
func (c *config) concurrent(ctx context.Context, e *idempotent.Engine, h func(context.Context, events.SQSMessage) error,
	msgs []events.SQSMessage, failed []bool) {
	next := make(chan int)
	var wg sync.WaitGroup
	var panicOnce sync.Once
	var panicked any
	for range min(c.concurrency, len(msgs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if p := recover(); p != nil {
					panicOnce.Do(func() { panicked = p })
					for range next { // let the feeder finish; the batch fails as a whole anyway
					}
				}
			}()
			for i := range next {
				failed[i] = !c.process(ctx, e, h, msgs[i])
			}
		}()
	}
	for i := range msgs {
		next <- i
	}
	close(next)
	wg.Wait()
	if panicked != nil {
		panic(panicked)
	}
}

// process runs one message through the engine and reports whether it may be deleted from the queue.
func (c *config) process(ctx context.Context, e *idempotent.Engine, h func(context.Context, events.SQSMessage) error,
	m events.SQSMessage) bool {
	log := c.logger.With(slog.String("message_id", m.MessageId))
	if err := ctx.Err(); err != nil {
		// The invocation is ending; leave the message for a later delivery rather than start work that cannot end.
		log.LogAttrs(ctx, slog.LevelWarn, "sqs message not processed: invocation ending")
		return false
	}
	if e.Disabled() {
		return c.report(ctx, log, h(ctx, m))
	}
	key, err := c.key(ctx, m)
	if err != nil {
		log.LogAttrs(ctx, slog.LevelError, "sqs message has an unusable idempotency key; it fails until it reaches the dead-letter queue",
			slog.String("error", err.Error()))
		return false
	}
	route := c.name
	if route == "" {
		route = m.EventSourceARN
	}
	payload := []byte(m.Body)
	if len(c.fields) > 0 {
		if sel, err := idempotent.SelectFields(payload, c.fields); err == nil {
			payload = sel
		}
	}
	req := idempotent.Request{
		Key:         key,
		KeyOptional: c.keyOptional,
		Scope:       idempotent.Scope{Route: route},
		Fingerprint: idempotent.Fingerprint("", route, payload),
		// Records written before fingerprint version 2 keep their IDs, so a redelivery across the upgrade must
		// still match them.
		LegacyFingerprint: idempotent.LegacyFingerprintFunc(func() string {
			return idempotent.LegacyFingerprint("", route, payload)
		}),
	}
	_, err = idempotent.Run(ctx, e, req, idempotent.Spec[struct{}]{}, func(ctx context.Context) (struct{}, error) {
		if err := h(ctx, m); err != nil {
			return struct{}{}, &handlerError{err}
		}
		return struct{}{}, nil
	})
	return c.report(ctx, log, err)
}

// report logs a message's failure at a level that says whether it will heal by itself, and reports success.
func (c *config) report(ctx context.Context, log *slog.Logger, err error) bool {
	var he *handlerError
	var inProgress *idempotent.InProgressError
	switch {
	case err == nil:
		return true
	case errors.As(err, &he):
		log.LogAttrs(ctx, slog.LevelWarn, "sqs message handler failed; the message will be delivered again",
			slog.String("error", he.err.Error()))
	case errors.As(err, &inProgress):
		log.LogAttrs(ctx, slog.LevelInfo, "sqs message is being processed by another invocation; it will be delivered again",
			slog.Duration("retry_after", inProgress.RetryAfter))
	case errors.Is(err, idempotent.ErrPayloadMismatch):
		log.LogAttrs(ctx, slog.LevelError, "sqs message reuses an idempotency key with another body; it fails until it reaches the dead-letter queue")
	case errors.Is(err, idempotent.ErrOutcomeUnknown):
		log.LogAttrs(ctx, slog.LevelError, "sqs message's earlier processing stopped before finishing and the lease policy refuses to run it again; it fails until it reaches the dead-letter queue")
	case errors.Is(err, idempotent.ErrMissingKey), errors.Is(err, idempotent.ErrInvalidKey):
		log.LogAttrs(ctx, slog.LevelError, "sqs message has no usable idempotency key; it fails until it reaches the dead-letter queue",
			slog.String("error", err.Error()))
	default:
		log.LogAttrs(ctx, slog.LevelError, "sqs message not processed: idempotency store failed; it will be delivered again",
			slog.String("error", err.Error()))
	}
	return false
}

func (c *config) key(ctx context.Context, m events.SQSMessage) (string, error) {
	switch {
	case c.keyFunc != nil:
		return c.keyFunc(ctx, m)
	case c.keyField != "":
		if !json.Valid([]byte(m.Body)) {
			return "", nil // no key in a body that is not JSON; KeyOptional decides
		}
		k, found, err := idempotent.JSONField([]byte(m.Body), c.keyField)
		if err == nil && found && k == "" {
			err = &idempotent.KeyError{Reason: "empty"}
		}
		if err != nil {
			return "", fmt.Errorf("key field %q: %w", c.keyField, err)
		}
		return k, nil
	default:
		return m.MessageId, nil
	}
}

func isFIFOMessage(m events.SQSMessage) bool {
	return m.Attributes["MessageGroupId"] != "" || strings.HasSuffix(m.EventSourceARN, ".fifo")
}

func isFIFO(msgs []events.SQSMessage) bool {
	for _, m := range msgs {
		if isFIFOMessage(m) {
			return true
		}
	}
	return false
}
