package redisstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/idemkit/idemkit/idempotent"
)

// ErrResponseTooLarge reports a key whose first execution completed with a response larger than
// Options.MaxDataSize (after compression). Such a response is not stored; the record is kept COMPLETED with the
// EncodingTooLarge marker instead, so the handler never runs a second time for the key within retention. A
// duplicate request with the same payload then fails with an error wrapping ErrResponseTooLarge and
// idempotent.ErrResponseUnavailable (apigw answers 409); one with another payload still gets ErrPayloadMismatch.
var ErrResponseTooLarge = fmt.Errorf("redisstore: the recorded response was too large to store: %w", idempotent.ErrResponseUnavailable)

// Client is the part of a go-redis client a Store uses: scripts and HMGET. *redis.Client, *redis.ClusterClient,
// *redis.Ring and redis.UniversalClient satisfy it.
type Client interface {
	redis.Scripter
	HMGet(ctx context.Context, key string, fields ...string) *redis.SliceCmd
}

var (
	_ Client = (*redis.Client)(nil)
	_ Client = (*redis.ClusterClient)(nil)
	_ Client = redis.UniversalClient(nil)
)

// Store is an idempotent.Store on Redis, Valkey, ElastiCache or MemoryDB: one hash per record, written by Lua
// scripts that run atomically on the server. It is safe for concurrent use; create one per function at init time
// and share it.
type Store struct {
	client Client
	opts   Options
}

var _ idempotent.Store = (*Store)(nil)

// New returns a Store that keeps its records through client.
func New(client Client, optFns ...func(*Options)) *Store {
	return &Store{client: client, opts: resolve(optFns)}
}

// Options returns a copy of the store's options with defaults applied.
func (s *Store) Options() Options { return s.opts }

// Key returns the Redis key of record id: Options.KeyPrefix + id.
func (s *Store) Key(id string) string { return s.opts.KeyPrefix + id }

// Claim implements idempotent.Store with one script call (EVALSHA; after a server restart or SCRIPT FLUSH the
// first call of each script falls back to EVAL, which caches it again). It writes the INPROGRESS record when the
// key is absent, expired or, with c.Takeover, INPROGRESS with an ended lease; otherwise the live record comes back
// in the same round trip.
func (s *Store) Claim(ctx context.Context, c idempotent.Claim) (*idempotent.Record, error) {
	rec := c.Record
	exp := ceilSeconds(rec.ExpiresAt)
	nowMs := c.Now.UnixMilli()
	// The server keeps the key until the rounded-up expiration, measured from now on its own clock: the duration
	// comes from the engine's clock, so the two clocks are never compared.
	ttl := max(exp*1000-nowMs, 1)
	takeover := "0"
	if c.Takeover {
		takeover = "1"
	}
	res, err := claimScript.Run(ctx, s.client, []string{s.Key(rec.ID)},
		c.Now.Unix(), nowMs, takeover, rec.Owner, rec.Fingerprint, ceilMillis(rec.LeaseEnd), exp, ttl).Result()
	if err != nil {
		return nil, s.fail("claim", rec.ID, err)
	}
	switch v := res.(type) {
	case int64:
		if v == claimWon || v == claimOwn {
			// claimOwn: our own claim, written by an earlier attempt of this call whose answer was lost (the
			// client retried). Owner tokens are random per claim, so no other invocation holds this one.
			return nil, nil
		}
	case []any:
		old, err := s.decode(rec.ID, v)
		if err != nil {
			return nil, s.fail("claim", rec.ID, err)
		}
		if old == nil {
			// The script read the record it judged live in the same atomic step; it cannot be gone.
			return nil, fmt.Errorf("redisstore: claim %s: conflicting record gone: %w", rec.ID, idempotent.ErrRecordChanged)
		}
		if old.tooLarge && old.rec.Fingerprint == rec.Fingerprint {
			return nil, fmt.Errorf("redisstore: claim %s: %w", rec.ID, ErrResponseTooLarge)
		}
		return &old.rec, nil
	}
	return nil, s.fail("claim", rec.ID, fmt.Errorf("unexpected script result %T %v", res, res))
}

// Complete implements idempotent.Store with one script call that replaces the INPROGRESS record held by
// rec.Owner with the COMPLETED one. Effects are refused: Redis has no transaction spanning another system, and a
// script that ran arbitrary commands beside the record would break on a cluster whenever their keys live on
// other slots. A response larger than Options.MaxDataSize after compression is not stored (see
// ErrResponseTooLarge): Complete records the key with EncodingTooLarge, logs a warning and returns nil.
func (s *Store) Complete(ctx context.Context, rec idempotent.Record, effects []idempotent.Effect) error {
	if len(effects) > 0 {
		return fmt.Errorf("redisstore: complete %s: %w: %T (the Redis store commits no writes with the record)",
			rec.ID, idempotent.ErrUnsupportedEffect, effects[0])
	}
	data, enc, err := s.encodeData(rec.Response)
	if err != nil {
		return fmt.Errorf("redisstore: complete %s: %w", rec.ID, err)
	}
	if len(data) > s.opts.MaxDataSize {
		s.opts.Logger.WarnContext(ctx, "idempotency response too large to record; duplicates will get an error instead of a replay",
			slog.String("id", rec.ID), slog.Int("response_bytes", len(rec.Response)), slog.Int("stored_bytes", len(data)),
			slog.Int("max_bytes", s.opts.MaxDataSize))
		data, enc = nil, EncodingTooLarge
	}
	res, err := completeScript.Run(ctx, s.client, []string{s.Key(rec.ID)},
		rec.Owner, ceilSeconds(rec.ExpiresAt), rec.Fingerprint, data, enc).Int64()
	if err != nil {
		return s.fail("complete", rec.ID, err)
	}
	return s.fenced("complete", rec.ID, res)
}

// Release implements idempotent.Store with one script call that deletes the INPROGRESS record held by owner. An
// absent record is released already.
func (s *Store) Release(ctx context.Context, id, owner string) error {
	res, err := releaseScript.Run(ctx, s.client, []string{s.Key(id)}, owner).Int64()
	if err != nil {
		return s.fail("release", id, err)
	}
	return s.fenced("release", id, res)
}

// Get implements idempotent.Store with one HMGET. Redis reads on the primary are strongly consistent (point the
// client at the primary endpoint, not a replica). A record marked EncodingTooLarge comes back COMPLETED with a nil
// Response.
func (s *Store) Get(ctx context.Context, id string, now time.Time) (*idempotent.Record, error) {
	vals, err := s.client.HMGet(ctx, s.Key(id), recordFields...).Result()
	if err != nil {
		return nil, s.fail("get", id, err)
	}
	d, err := s.decode(id, vals)
	if err != nil {
		return nil, s.fail("get", id, err)
	}
	if d == nil || d.rec.Expired(now) {
		return nil, nil
	}
	return &d.rec, nil
}

// fenced turns the result of the complete and release scripts into an error.
func (s *Store) fenced(op, id string, res int64) error {
	var reason string
	switch res {
	case fenceOK:
		return nil
	case fenceAbsent:
		reason = "record absent"
	case fenceCompleted:
		reason = "record is COMPLETED"
	case fenceOtherOwner:
		reason = "record held by another invocation"
	default:
		return s.fail(op, id, fmt.Errorf("unexpected script result %d", res))
	}
	return fmt.Errorf("redisstore: %s %s: %s: %w", op, id, reason, idempotent.ErrFenced)
}

// fail wraps a failed call. A refusal no retry can fix wraps idempotent.ErrPermanent as well.
func (s *Store) fail(op, id string, err error) error {
	if Permanent(err) {
		return fmt.Errorf("redisstore: %s %s: %w (%w)", op, id, idempotent.ErrPermanent, err)
	}
	return fmt.Errorf("redisstore: %s %s: %w", op, id, err)
}

// transientPrefixes are the error replies of a server that is busy, failing over, resharding, out of memory or
// unable to persist: states that pass, so a retry later can succeed.
var transientPrefixes = []string{
	"LOADING", "BUSY", "READONLY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "NOREPLICAS", "MOVED", "ASK",
	"OOM", "MISCONF", "ERR max number of clients",
}

// Permanent reports whether err is a refusal that no retry can fix: an error reply of the server other than the
// transient ones (a busy script, loading, failover, resharding, out of memory, unable to persist, too many
// clients). Examples: WRONGTYPE (the key holds another kind of value), NOPERM (an ACL forbids EVAL or the key),
// WRONGPASS and NOAUTH (bad credentials), an unknown command (EVAL renamed or disabled), or a record this package
// cannot read. Network errors, timeouts and cancelled contexts are not permanent.
func Permanent(err error) bool {
	var bad *malformedError
	if errors.As(err, &bad) {
		return true
	}
	var rerr redis.Error
	if !errors.As(err, &rerr) || errors.Is(err, redis.Nil) {
		return false
	}
	msg := rerr.Error()
	for _, p := range transientPrefixes {
		if strings.HasPrefix(msg, p) {
			return false
		}
	}
	return true
}
