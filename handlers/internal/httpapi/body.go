package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strconv"
	"unicode/utf8"
)

// MaxBodyBytes bounds the request bodies ReadObject accepts. API Gateway itself caps payloads at 10 MB; the
// service's bodies are a few hundred bytes, so anything near this is not a real request.
const MaxBodyBytes = 64 << 10

// Object is a request body that is one JSON object, its members kept raw until a typed getter reads them.
// Getters record a FieldError for each missing, mistyped or out-of-rule member, so one response lists them all.
type Object struct {
	members map[string]json.RawMessage
	known   map[string]bool
	errs    []FieldError
}

// ReadObject parses the body of a proxy event (base64-decoded when isBase64 is set) as exactly one JSON object.
// A body that is not that (empty, malformed, a duplicate member, trailing data, another JSON type) is answered
// with a 400 problem whose detail says what is wrong and where.
func ReadObject(body string, isBase64 bool) (*Object, *Problem) {
	raw := []byte(body)
	if isBase64 {
		dec, err := base64.StdEncoding.DecodeString(body)
		if err != nil {
			p := BadRequest("The request body is marked base64-encoded but is not valid base64.")
			return nil, &p
		}
		raw = dec
	}
	if len(raw) > MaxBodyBytes {
		p := BadRequest(fmt.Sprintf("The request body is larger than %d bytes.", MaxBodyBytes))
		p.Status = 413
		p.Title = "Request body too large"
		return nil, &p
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		p := BadRequest("The request body is empty; send a JSON object.")
		return nil, &p
	}
	if off := invalidUTF8(raw); off >= 0 {
		// encoding/json would quietly turn the bytes into U+FFFD, and the service would act on text the client
		// never sent.
		p := BadRequest(fmt.Sprintf("The request body is not valid UTF-8 (byte offset %d); send JSON in UTF-8.", off))
		return nil, &p
	}
	members, msg := decodeObject(raw)
	if msg != "" {
		p := BadRequest(msg)
		return nil, &p
	}
	return &Object{members: members, known: make(map[string]bool)}, nil
}

// decodeObject reads one JSON object member by member, so duplicate names are caught (encoding/json would keep
// the last silently, and then two parsers could disagree on what the client asked for).
func decodeObject(raw []byte) (members map[string]json.RawMessage, problem string) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return nil, describeSyntax(err, dec)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Sprintf("The request body must be a JSON object, not %s.", describeToken(tok))
	}
	members = make(map[string]json.RawMessage)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, describeSyntax(err, dec)
		}
		name, ok := tok.(string)
		if !ok {
			return nil, fmt.Sprintf("Malformed JSON at byte offset %d: expected a member name.", dec.InputOffset())
		}
		if name == "" {
			// FieldError's empty Field means the whole body, so such a member could not be named in an answer.
			return nil, fmt.Sprintf("Malformed request at byte offset %d: a member name is empty.", dec.InputOffset())
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, describeSyntax(err, dec)
		}
		if _, dup := members[name]; dup {
			// The name is the client's text: redacted, so that a card number sent as a name does not come back.
			return nil, fmt.Sprintf("The member %q appears more than once in the request body.", RedactCardNumbers(name))
		}
		members[name] = v
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, describeSyntax(err, dec)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Sprintf("Malformed JSON at byte offset %d: unexpected data after the object.", dec.InputOffset())
	}
	return members, ""
}

// invalidUTF8 returns the offset of the first byte that is not part of valid UTF-8, or -1.
func invalidUTF8(b []byte) int {
	if utf8.Valid(b) {
		return -1
	}
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return -1
}

// describeSyntax turns a decoding error into a sentence for the client. encoding/json's syntax messages describe
// the client's own input ("invalid character 'x' looking for beginning of value"), so they are safe to return.
func describeSyntax(err error, dec *json.Decoder) string {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("Malformed JSON at byte offset %d: %s.", se.Offset, se.Error())
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "Malformed JSON: the body ends before the object is complete."
	default:
		return fmt.Sprintf("Malformed JSON at byte offset %d.", dec.InputOffset())
	}
}

func describeToken(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		if v == '[' {
			return "an array"
		}
		return "an object"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	default:
		return "a number"
	}
}

// jsonType names the JSON type of a raw value for "must be a string, not a number" messages.
func jsonType(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// Fail records an error for field.
func (o *Object) Fail(field, message string) {
	o.errs = append(o.errs, FieldError{Field: field, Message: message})
}

// Errors returns the field errors recorded so far, unknown members included once Unknown has been called.
func (o *Object) Errors() []FieldError { return o.errs }

// Has reports whether field is present and not null.
func (o *Object) Has(field string) bool {
	o.known[field] = true
	raw, ok := o.members[field]
	return ok && !isNull(raw)
}

// String returns the string member field. A missing or null member is an error only when required; ok is false
// whenever no usable string was read.
func (o *Object) String(field string, required bool) (s string, ok bool) {
	o.known[field] = true
	raw, present := o.members[field]
	if !present || isNull(raw) {
		if required {
			o.Fail(field, "is required")
		}
		return "", false
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		o.Fail(field, "must be a string, not "+jsonType(raw))
		return "", false
	}
	return s, true
}

var integerLiteral = regexp.MustCompile(`^-?(0|[1-9][0-9]*)$`)

// Int returns the integer member field, which must be a JSON number written without fraction or exponent
// (2000, not 2000.0, 2e3 or "2000"), so the amount a client sends is exactly the amount charged.
func (o *Object) Int(field string, required bool) (n int64, ok bool) {
	o.known[field] = true
	raw, present := o.members[field]
	if !present || isNull(raw) {
		if required {
			o.Fail(field, "is required")
		}
		return 0, false
	}
	lit := string(bytes.TrimSpace(raw))
	if jsonType(raw) != "a number" {
		o.Fail(field, "must be an integer, not "+jsonType(raw))
		return 0, false
	}
	if !integerLiteral.MatchString(lit) {
		o.Fail(field, "must be an integer, written without a fraction or exponent")
		return 0, false
	}
	n, err := strconv.ParseInt(lit, 10, 64)
	if err != nil { // out of int64 range: report as the largest magnitude so the caller's range rule speaks
		if lit[0] == '-' {
			return math.MinInt64, true
		}
		return math.MaxInt64, true
	}
	return n, true
}

// Unknown records an error for every member that no getter or Has asked about, so a misspelt optional field
// ("descripton") is an error instead of being silently dropped. Call it after all the getters.
func (o *Object) Unknown() {
	var names []string
	for name := range o.members {
		if !o.known[name] {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		// The name is echoed in the answer: a card number sent as a member name must not come back (nor reach a
		// log that records the answer), so its digits are masked.
		o.Fail(RedactCardNumbers(name), "is not a recognised field")
	}
}
