package idempotent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

// Handler is the shape of a Lambda handler over the user's own types, as lambda.Start accepts it.
type Handler[In, Out any] func(context.Context, In) (Out, error)

// KeyFunc extracts the idempotency key from an input. Returning "" means the input carries no key.
type KeyFunc[In any] func(context.Context, In) (string, error)

// WrapOption configures Wrap.
type WrapOption func(*wrapConfig)

type wrapConfig struct {
	name        string
	keyOptional bool
	fields      []string
	merged      bool
}

// WithName sets the operation name the keys are scoped to (Scope.Route). Use distinct names for functions that
// share a table. Default: the function name from AWS_LAMBDA_FUNCTION_NAME, read by the caller; empty otherwise.
func WithName(name string) WrapOption { return func(c *wrapConfig) { c.name = name } }

// WithKeyOptional runs the handler without idempotency when the key function returns "" (instead of failing with
// ErrMissingKey).
func WithKeyOptional() WrapOption { return func(c *wrapConfig) { c.keyOptional = true } }

// WithPayloadFields fingerprints only the given dot-separated JSON paths of the input (see SelectFields), so that
// fields which differ between retries (timestamps, trace ids) do not count as a different payload.
func WithPayloadFields(paths ...string) WrapOption {
	return func(c *wrapConfig) { c.fields = append(c.fields, paths...) }
}

// WithMergedClaim runs the handler before the key is claimed and claims and records it in one store call with the
// handler's effects (Spec.MergeClaim). Only for handlers whose every side effect is an effect handed over with
// AddEffect and which call nothing outside. Default: claim first.
func WithMergedClaim() WrapOption { return func(c *wrapConfig) { c.merged = true } }

// Wrap makes any handler idempotent: the first input with a key runs h; later inputs with the same key get the
// first result back (decoded from JSON) without running h, or an error from Run's list when the first is still
// running or the payload differs. The payload fingerprint is the canonical JSON of the input.
func Wrap[In, Out any](e *Engine, key KeyFunc[In], h Handler[In, Out], opts ...WrapOption) Handler[In, Out] {
	var cfg wrapConfig
	for _, o := range opts {
		o(&cfg)
	}
	return func(ctx context.Context, in In) (Out, error) {
		var zero Out
		if e.Disabled() {
			return h(ctx, in)
		}
		k, err := key(ctx, in)
		if err != nil {
			return zero, fmt.Errorf("idempotent: key function: %w", err)
		}
		payload, err := json.Marshal(in)
		if err != nil {
			return zero, fmt.Errorf("idempotent: encode input for fingerprint: %w", err)
		}
		if len(cfg.fields) > 0 {
			if payload, err = SelectFields(payload, cfg.fields); err != nil {
				return zero, err
			}
		}
		req := Request{
			Key:         k,
			KeyOptional: cfg.keyOptional,
			Scope:       Scope{Route: cfg.name},
			Fingerprint: Fingerprint("", cfg.name, payload),
		}
		res, err := Run(ctx, e, req, Spec[Out]{MergeClaim: cfg.merged}, func(ctx context.Context) (Out, error) { return h(ctx, in) })
		return res.Value, err
	}
}

// FieldKey returns a KeyFunc that reads the key from a dot-separated JSON path of the input, such as
// "idempotencyKey" or "order.id" (see JSONField). A missing field or JSON null means no key; an empty string is an
// invalid key (*KeyError), not an absent one.
func FieldKey[In any](path string) KeyFunc[In] {
	return func(_ context.Context, in In) (string, error) {
		doc, err := json.Marshal(in)
		if err != nil {
			return "", err
		}
		k, found, err := JSONField(doc, path)
		if err == nil && found && k == "" {
			err = &KeyError{Reason: "empty"}
		}
		return k, err
	}
}

// JSONField reads the key at a dot-separated path of a JSON object document. Strings are returned as they are and
// numbers as written. found is false when the path is absent or null, so an empty string can be told apart from a
// missing field. A value of another JSON type is a *KeyError; a document that is not JSON is a plain error.
func JSONField(doc []byte, path string) (key string, found bool, err error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", false, fmt.Errorf("idempotent: body is not JSON: %w", err)
	}
	for _, part := range strings.Split(path, ".") {
		obj, ok := v.(map[string]any)
		if !ok {
			return "", false, nil
		}
		v = obj[part]
	}
	switch x := v.(type) {
	case nil:
		return "", false, nil
	case string:
		return x, true, nil
	case json.Number:
		return x.String(), true, nil
	case map[string]any:
		return "", true, &KeyError{Reason: "the field is a JSON object, not a string"}
	case []any:
		return "", true, &KeyError{Reason: "the field is a JSON array, not a string"}
	default:
		return "", true, &KeyError{Reason: "the field is a JSON boolean, not a string"}
	}
}
