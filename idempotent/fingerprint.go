package idempotent

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
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
	// Function is the function the record belongs to, so that functions sharing a table never share records
	// (apigw sets the Lambda function's name). Empty leaves it out of the ID, which is then the ID of releases
	// before it was added.
	Function string
	// Principal is the authenticated caller, namespaced by its source ("jwt:<sub>", "iam:<arn>"...), or
	// "anonymous".
	Principal string
	// Method is the HTTP method, or empty outside HTTP.
	Method string
	// Route is the route template ("/payments/{id}") or, outside HTTP, the operation's name.
	Route string
}

// ID returns the storage key for key within s: a hex SHA-256 over the scope's fields and the key, each length
// prefixed so that no two distinct inputs can share one encoding. A scope without Function hashes as releases
// before Function existed did, so their records keep their IDs.
func (s Scope) ID(key string) string {
	// The whole input is built in one buffer and hashed at once, which keeps the hash state, the conversions to
	// []byte and the sum off the heap.
	var buf [512]byte
	var b []byte
	if s.Function == "" {
		b = append(buf[:0], "idemkit/id/v1"...)
	} else {
		b = append(buf[:0], "idemkit/id/v2"...)
		b = appendField(b, s.Function)
	}
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
//
// It is the form version 1 fingerprints hashed (see LegacyFingerprint). Fingerprints no longer use it: RFC 8785
// writes every number as a double, which merges numbers a handler reads differently (see Fingerprint).
func CanonicalJSON(doc []byte) ([]byte, error) {
	c := getCanonicalizer()
	defer c.release()
	out, err := appendCanonical(c, make([]byte, 0, len(doc)), doc, false)
	if err != nil {
		return nil, fmt.Errorf("idempotent: canonicalise JSON: %w at offset %d", err, c.errOff)
	}
	return out, nil
}

// FingerprintVersion is the prefix of the fingerprints this release computes: "v2:" and the SHA-256 in unpadded
// base64url, 46 bytes in all (shorter than hex, so the string fits a smaller allocation and item). Records
// hold their fingerprint with its version, so a later change of the fingerprint can still compare the records
// written before it; version 1 fingerprints, a bare hex SHA-256, carry no prefix (see LegacyFingerprint).
const FingerprintVersion = "v2:"

// Target is what an HTTP request is addressed to, beyond its body: everything a handler may read that the
// fingerprint must tell apart. Outside HTTP only Route, the operation's name, is set (see Fingerprint).
type Target struct {
	// Method is the HTTP method, or empty outside HTTP.
	Method string
	// Route is the route template ("/payments/{id}"), or outside HTTP the operation's name.
	Route string
	// Path is the concrete path ("/payments/pay_123"), which holds the path parameters.
	Path string
	// Query is the query string in an encoding chosen by the adapter that keeps apart any two query strings a
	// handler reads differently (apigw: the raw query string, or the parameter maps of a REST event).
	Query string
	// Header holds the values of the headers the fingerprint is told to cover, likewise encoded by the adapter.
	Header string
}

// Fingerprint returns the version 2 fingerprint of method, route and payload: Target{Method: method, Route:
// route}.Fingerprint(payload).
func Fingerprint(method, route string, payload []byte) string {
	return fingerprint(Target{Method: method, Route: route}, payload)
}

// FingerprintString is Fingerprint of a payload held in a string, such as an API Gateway event's body, which it
// reads where it is instead of copying it into a []byte first.
func FingerprintString(method, route, payload string) string {
	return fingerprint(Target{Method: method, Route: route}, payload)
}

// Fingerprint returns FingerprintVersion followed by the SHA-256 of t's fields and payload. Two payloads
// share a fingerprint only if encoding/json reads them alike, into typed structs, into map[string]any with
// UseNumber and into json.RawMessage members (then decoded): a JSON document is brought to a form where object
// member order, insignificant whitespace and the spelling of string escapes do not matter, while number literals
// stay exactly as written (1, 1.0 and 1e0 differ). A document with an object whose member names are equal under
// encoding/json's case folding ({"amount":1,"AMOUNT":2}, which a struct reads by their order), and any payload
// that is not JSON, is hashed as its raw bytes.
func (t *Target) Fingerprint(payload []byte) string { return fingerprint(*t, payload) }

// FingerprintString is Fingerprint of a payload held in a string.
func (t *Target) FingerprintString(payload string) string { return fingerprint(*t, payload) }

func fingerprint[P text](t Target, payload P) string {
	c := getCanonicalizer()
	defer c.release()
	b := append(c.buf[:0], "idemkit/fp/v2"...)
	b = appendField(b, t.Method)
	b = appendField(b, t.Route)
	b = appendField(b, t.Path)
	b = appendField(b, t.Query)
	b = appendField(b, t.Header)
	b = appendPayload(c, b, payload, true)
	c.buf = b
	sum := sha256.Sum256(b)
	var h [len(FingerprintVersion) + 43]byte // 43: unpadded base64 of 32 bytes
	copy(h[:], FingerprintVersion)
	base64.RawURLEncoding.Encode(h[len(FingerprintVersion):], sum[:])
	return string(h[:])
}

// appendPayload appends the payload's kind ("json" or "raw") and its form, both length-prefixed: the canonical
// form (exact or RFC 8785) of a JSON document, else the raw bytes.
func appendPayload[P text](c *canonicalizer, b []byte, payload P, exact bool) []byte {
	start := len(b)
	b = appendField(b, "json")
	// The canonical form follows a placeholder for its length, filled in once the length is known.
	at := len(b)
	b = binary.BigEndian.AppendUint64(b, 0)
	b, err := appendCanonical(c, b, payload, exact)
	if err == nil {
		binary.BigEndian.PutUint64(b[at:], uint64(len(b)-at-8))
		return b
	}
	b = appendField(b[:start], "raw")
	b = binary.BigEndian.AppendUint64(b, uint64(len(payload)))
	return append(b, payload...)
}

// LegacyFingerprint returns the version 1 fingerprint of method, route and payload, as releases before version 2
// computed it: a bare hex SHA-256 over them, with a JSON payload in its RFC 8785 form (see CanonicalJSON).
// Adapters compute it only to compare a request with a record such a release wrote (Request.LegacyFingerprint).
func LegacyFingerprint(method, route string, payload []byte) string {
	return legacyFingerprint(method, route, payload)
}

// LegacyFingerprintString is LegacyFingerprint of a payload held in a string.
func LegacyFingerprintString(method, route, payload string) string {
	return legacyFingerprint(method, route, payload)
}

func legacyFingerprint[P text](method, route string, payload P) string {
	c := getCanonicalizer()
	defer c.release()
	b := append(c.buf[:0], "idemkit/fp/v1"...)
	b = appendField(b, method)
	b = appendField(b, route)
	b = appendPayload(c, b, payload, false)
	c.buf = b
	return hexSum(b)
}

// IsLegacyFingerprint reports whether fp is a version 1 fingerprint: 64 lower-case hex digits, no version prefix.
func IsLegacyFingerprint(fp string) bool {
	if len(fp) != 2*sha256.Size {
		return false
	}
	for i := 0; i < len(fp); i++ {
		if c := fp[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// SelectFields returns a JSON object holding only the given dot-separated paths of a JSON object document
// ("amount", "customer.id"), each under its path with its value as written; a missing path maps to null. Use it to
// fingerprint only the fields that define a request, so that volatile fields (timestamps, trace ids) do not cause
// mismatches.
//
// encoding/json matches member names to struct fields without regard to case, the last match winning, so
// {"amount":1,"AMOUNT":2} means 2 to a handler's Amount field and {"AMOUNT":2} means 2 as well. Where a path's
// segment matches a member only under case folding, or matches several, no selection can say what the handler
// reads; SelectFields then returns the whole document wrapped in a JSON array, so that such a request
// fingerprints as its whole body does (and never like a selection, which is an object).
func SelectFields(doc []byte, paths []string) ([]byte, error) {
	if !json.Valid(doc) {
		return nil, fmt.Errorf("idempotent: payload is not JSON")
	}
	out := []byte{'{'}
	for i, p := range paths {
		if slices.Contains(paths[:i], p) {
			continue
		}
		v, ok, err := selectPath(doc, p)
		if err != nil {
			return nil, err
		}
		if !ok {
			return append(append([]byte{'['}, doc...), ']'), nil
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		name, err := json.Marshal(p)
		if err != nil {
			return nil, err
		}
		out = append(append(append(out, name...), ':'), v...)
	}
	return append(out, '}'), nil
}

// selectPath returns the value at path in the valid JSON document doc as written, or null when a segment is
// missing or the value it is looked up in is not an object. ok is false when a segment is ambiguous: it matches a
// member name only under encoding/json's case folding, or matches several.
func selectPath(doc []byte, path string) (v json.RawMessage, ok bool, err error) {
	v = doc
	for _, seg := range strings.Split(path, ".") {
		v = bytes.TrimLeft(v, " \t\r\n")
		if len(v) == 0 || v[0] != '{' {
			return json.RawMessage("null"), true, nil
		}
		want := foldHash([]byte(seg))
		var found json.RawMessage
		matches, exact := 0, false
		dec := json.NewDecoder(bytes.NewReader(v))
		if _, err := dec.Token(); err != nil {
			return nil, false, err
		}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return nil, false, err
			}
			name, _ := tok.(string)
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return nil, false, err
			}
			// A hash collision can only add a match, which makes the segment ambiguous: never a wrong value.
			if foldHash([]byte(name)) == want {
				matches++
				found, exact = raw, name == seg
			}
		}
		switch {
		case matches == 0:
			return json.RawMessage("null"), true, nil
		case matches > 1 || !exact:
			return nil, false, nil
		}
		v = found
	}
	return v, true, nil
}
