package idempotent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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
	codec       any // a Codec[Out] for the Out of the handler passed to Wrap; nil means JSONCodec
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

// WithCodec records the handler's results with c instead of JSONCodec. The default replays a result through
// encoding/json, so a duplicate gets what JSON keeps: unexported fields are lost, a time.Time comes back with a
// fixed offset instead of its Location, and an interface field comes back as a map. Give a codec when Out needs
// more (Codec's contract: Decode(Encode(v)) must answer exactly as v would). Out must be the result type of the
// handler given to Wrap; Wrap panics when it is not, as that is a programming error found at start-up.
// Default: nil, JSONCodec.
func WithCodec[Out any](c Codec[Out]) WrapOption {
	return func(cfg *wrapConfig) { cfg.codec = c }
}

// WithMergedClaim runs the handler before the key is claimed and claims and records it in one store call with the
// handler's effects (Spec.MergeClaim). Only for handlers whose every side effect is an effect handed over with
// AddEffect and which call nothing outside. Default: claim first.
func WithMergedClaim() WrapOption { return func(c *wrapConfig) { c.merged = true } }

// Wrap makes any handler idempotent: the first input with a key runs h; later inputs with the same key get the
// first result back (decoded by the codec, JSON unless WithCodec) without running h, or an error from Run's list
// when the first is still running or the payload differs. The payload fingerprint is the canonical JSON of the
// input. An error of the key function is returned wrapped ("idempotent: key function: ..."), except a *KeyError,
// which is returned as it is so that it reads and branches like the engine's own ErrInvalidKey.
func Wrap[In, Out any](e *Engine, key KeyFunc[In], h Handler[In, Out], opts ...WrapOption) Handler[In, Out] {
	var cfg wrapConfig
	for _, o := range opts {
		o(&cfg)
	}
	spec := Spec[Out]{MergeClaim: cfg.merged}
	if cfg.codec != nil {
		c, ok := cfg.codec.(Codec[Out])
		if !ok {
			var out Out
			panic(fmt.Sprintf("idempotent: Wrap: WithCodec got a %T, which is not a Codec[%T] for the handler's result", cfg.codec, out))
		}
		spec.Codec = c
	}
	return func(ctx context.Context, in In) (Out, error) {
		var zero Out
		if e.Disabled() {
			return h(ctx, in)
		}
		k, err := key(ctx, in)
		if err != nil {
			var ke *KeyError
			if errors.As(err, &ke) {
				return zero, err
			}
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
			// Records written before fingerprint version 2 keep their IDs here, so their retries must still match.
			LegacyFingerprint: LegacyFingerprintFunc(func() string { return LegacyFingerprint("", cfg.name, payload) }),
		}
		res, err := Run(ctx, e, req, spec, func(ctx context.Context) (Out, error) { return h(ctx, in) })
		return res.Value, err
	}
}

// FieldKey returns a KeyFunc that reads the key from a dot-separated JSON path of the input as encoding/json
// marshals it, such as "idempotencyKey" or "order.id" (see JSONField): a string field, or a number (as written).
// The field is read after In was decoded into Go values, where an absent key and an empty one are the same zero
// string, so a missing field, JSON null and "" all mean no key: ErrMissingKey, or no idempotency at all under
// WithKeyOptional. An object, array or boolean at the path is a *KeyError (ErrInvalidKey).
func FieldKey[In any](path string) KeyFunc[In] {
	return func(_ context.Context, in In) (string, error) {
		doc, err := json.Marshal(in)
		if err != nil {
			return "", fmt.Errorf("encode input to read %q: %w", path, err)
		}
		k, _, err := JSONField(doc, path)
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
