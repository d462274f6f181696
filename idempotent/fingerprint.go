package idempotent

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
)

// MaxKeyLength is the longest idempotency key accepted, in bytes.
const MaxKeyLength = 255

// ValidateKey checks the key grammar: 1 to 255 visible ASCII characters (0x21-0x7E). It returns a *KeyError.
func ValidateKey(key string) error {
	if key == "" {
		return &KeyError{Reason: "empty"}
	}
	if len(key) > MaxKeyLength {
		return &KeyError{Reason: fmt.Sprintf("longer than %d characters", MaxKeyLength)}
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c < 0x21 || c > 0x7e {
			return &KeyError{Reason: fmt.Sprintf("character at position %d is not visible ASCII (0x21-0x7E)", i+1)}
		}
	}
	return nil
}

// Scope binds a key to who sent it and what it was sent to. The same key in another scope is another record.
type Scope struct {
	// Principal is the authenticated caller (JWT sub, authorizer principalId, IAM ARN) or "anonymous".
	Principal string
	// Method is the HTTP method, or empty outside HTTP.
	Method string
	// Route is the route template ("/payments/{id}") or, outside HTTP, the operation's name.
	Route string
}

// ID returns the storage key for key within s: a hex SHA-256 over the scope's fields and the key, each length
// prefixed so that no two distinct inputs can share one encoding.
func (s Scope) ID(key string) string {
	// The whole input is built in one buffer and hashed at once, which keeps the hash state, the conversions to
	// []byte and the sum off the heap.
	var buf [512]byte
	b := append(buf[:0], "idemkit/id/v1"...)
	b = appendField(b, s.Principal)
	b = appendField(b, s.Method)
	b = appendField(b, s.Route)
	b = appendField(b, key)
	return hexSum(b)
}

// appendField appends s with its length before it, as 8 bytes big-endian.
func appendField(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(len(s)))
	return append(b, s...)
}

// hexSum returns the hex SHA-256 of b.
func hexSum(b []byte) string {
	sum := sha256.Sum256(b)
	var h [2 * sha256.Size]byte
	hex.Encode(h[:], sum[:])
	return string(h[:])
}

// CanonicalJSON returns the RFC 8785 (JCS) form of a JSON document: object members sorted by their UTF-16 code
// units, insignificant whitespace removed, numbers and strings in one canonical spelling. Invalid JSON is an
// error, and so are duplicate member names, escapes of unpaired surrogates, numbers beyond the range of a double
// and nesting deeper than 10,000 levels. Bytes that are not UTF-8 inside strings are kept as they are.
func CanonicalJSON(doc []byte) ([]byte, error) {
	c := getCanonicalizer()
	defer c.release()
	out, err := appendCanonical(c, make([]byte, 0, len(doc)), doc)
	if err != nil {
		return nil, fmt.Errorf("idempotent: canonicalise JSON: %w at offset %d", err, c.errOff)
	}
	return out, nil
}

// Fingerprint returns the hex SHA-256 of method, route and payload. A payload that is a JSON document is
// canonicalised first (see CanonicalJSON), so key order and whitespace do not change the fingerprint; any other
// payload is hashed as it is.
func Fingerprint(method, route string, payload []byte) string {
	return fingerprint(method, route, payload)
}

// FingerprintString is Fingerprint of a payload held in a string, such as an API Gateway event's body, which it
// reads where it is instead of copying it into a []byte first.
func FingerprintString(method, route, payload string) string {
	return fingerprint(method, route, payload)
}

func fingerprint[P text](method, route string, payload P) string {
	c := getCanonicalizer()
	defer c.release()
	b := append(c.buf[:0], "idemkit/fp/v1"...)
	b = appendField(b, method)
	b = appendField(b, route)
	b = appendField(b, "json")
	// The canonical form follows a placeholder for its length, filled in once the length is known.
	at := len(b)
	b = binary.BigEndian.AppendUint64(b, 0)
	b, err := appendCanonical(c, b, payload)
	if err == nil {
		binary.BigEndian.PutUint64(b[at:], uint64(len(b)-at-8))
	} else {
		b = appendField(b[:at-8-len("json")], "raw")
		b = binary.BigEndian.AppendUint64(b, uint64(len(payload)))
		b = append(b, payload...)
	}
	c.buf = b
	return hexSum(b)
}

// SelectFields returns a JSON object holding only the given dot-separated paths of a JSON object document
// ("amount", "customer.id"), each under its path; a missing path maps to null. Use it to fingerprint only the
// fields that define a request, so that volatile fields (timestamps, trace ids) do not cause mismatches.
func SelectFields(doc []byte, paths []string) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var root any
	if err := dec.Decode(&root); err != nil {
		return nil, fmt.Errorf("idempotent: payload is not JSON: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("idempotent: payload has data after the JSON document")
	}
	out := make(map[string]any, len(paths))
	for _, p := range paths {
		var v any = root
		for _, part := range strings.Split(p, ".") {
			obj, ok := v.(map[string]any)
			if !ok {
				v = nil
				break
			}
			v = obj[part]
		}
		out[p] = v
	}
	return json.Marshal(out)
}
