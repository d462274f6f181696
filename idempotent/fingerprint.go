package idempotent

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"strings"

	"github.com/gowebpki/jcs"
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
	h := sha256.New()
	h.Write([]byte("idemkit/id/v1"))
	writeField(h, s.Principal)
	writeField(h, s.Method)
	writeField(h, s.Route)
	writeField(h, key)
	return hex.EncodeToString(h.Sum(nil))
}

func writeField(h hash.Hash, s string) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(s)))
	h.Write(n[:])
	h.Write([]byte(s))
}

// CanonicalJSON returns the RFC 8785 (JCS) form of a JSON document: object members sorted, insignificant
// whitespace removed, numbers and strings in one canonical spelling. Invalid JSON is an error.
func CanonicalJSON(doc []byte) ([]byte, error) {
	if !json.Valid(doc) {
		return nil, fmt.Errorf("idempotent: not valid JSON")
	}
	out, err := jcs.Transform(doc)
	if err != nil {
		return nil, fmt.Errorf("idempotent: canonicalise JSON: %w", err)
	}
	return out, nil
}

// Fingerprint returns the hex SHA-256 of method, route and payload. A payload that is a JSON document is
// canonicalised first, so key order and whitespace do not change the fingerprint; any other payload is hashed as
// it is.
func Fingerprint(method, route string, payload []byte) string {
	h := sha256.New()
	h.Write([]byte("idemkit/fp/v1"))
	writeField(h, method)
	writeField(h, route)
	if canon, err := CanonicalJSON(payload); err == nil {
		writeField(h, "json")
		writeField(h, string(canon))
	} else {
		writeField(h, "raw")
		writeField(h, string(payload))
	}
	return hex.EncodeToString(h.Sum(nil))
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
