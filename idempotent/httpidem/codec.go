package httpidem

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"unicode/utf8"
)

// recordVersion tags the stored form so that a later release can change it and still read old records.
const recordVersion = 1

type storedResponse struct {
	V int `json:"v"`
	Response
}

// responseCodec stores a response as JSON. JSON is faithful here for the same reason it is the wire format: the
// Lambda runtime marshals the handler's response with encoding/json before API Gateway sees it, so the recorded
// JSON decodes to a response that marshals exactly as the original did (string bytes that are not valid UTF-8
// become U+FFFD in both). HTML escaping is off to keep records small.
//
// Both directions skip encoding/json's reflection, which cost more than the rest of a replay: Encode writes
// byte for byte what json.Encoder wrote for storedResponse (so records do not change), and Decode reads that
// exact layout directly, handing anything else (another version, another spelling) to json.Unmarshal.
type responseCodec struct{}

func (responseCodec) Encode(r Response) ([]byte, error) {
	n := 128 + len(r.Body) + len(r.Cookies)*16
	for k, v := range r.Headers {
		n += len(k) + len(v) + 6
	}
	b := make([]byte, 0, n)
	b = append(b, `{"v":`...)
	b = strconv.AppendInt(b, recordVersion, 10)
	b = append(b, `,"statusCode":`...)
	b = strconv.AppendInt(b, int64(r.StatusCode), 10)
	b = append(b, `,"headers":`...)
	b = appendMap(b, r.Headers, appendString)
	b = append(b, `,"multiValueHeaders":`...)
	b = appendMap(b, r.MultiValueHeaders, appendStrings)
	b = append(b, `,"cookies":`...)
	b = appendStrings(b, r.Cookies)
	b = append(b, `,"body":`...)
	b = appendString(b, r.Body)
	b = append(b, `,"isBase64Encoded":`...)
	b = strconv.AppendBool(b, r.IsBase64Encoded)
	return append(b, '}'), nil
}

func (responseCodec) Decode(b []byte) (Response, error) {
	if r, ok := decodeStored(b); ok {
		return r, nil
	}
	var s storedResponse
	if err := json.Unmarshal(b, &s); err != nil {
		return Response{}, err
	}
	if s.V != recordVersion {
		return Response{}, fmt.Errorf("httpidem: recorded response has format version %d, want %d", s.V, recordVersion)
	}
	return s.Response, nil
}

// sortedNames returns m's keys in order, in buf when they fit, as encoding/json writes map members.
func sortedNames[V any](m map[string]V, buf []string) []string {
	names := buf[:0]
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

// appendMap writes m as encoding/json writes a map: null for nil, else its members sorted by name, each value
// written by value.
func appendMap[V any](b []byte, m map[string]V, value func([]byte, V) []byte) []byte {
	if m == nil {
		return append(b, "null"...)
	}
	var buf [16]string
	b = append(b, '{')
	for i, k := range sortedNames(m, buf[:]) {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = value(b, m[k])
	}
	return append(b, '}')
}

func appendStrings(b []byte, s []string) []byte {
	if s == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, v := range s {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, v)
	}
	return append(b, ']')
}

// appendString writes s as encoding/json does with HTML escaping off: '"', '\\' and control characters escaped
// (\b, \f, \n, \r, \t, else \u00xx), bytes that are not UTF-8 as \ufffd, U+2028 and U+2029 escaped for
// JavaScript, everything else as it is.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// decodeStored reads the layout Encode writes. It reports false for anything else, which json.Unmarshal then
// reads (or refuses) with its own rules.
func decodeStored(b []byte) (Response, bool) {
	d := reader{b: b, ok: true}
	var r Response
	d.expect(`{"v":1,"statusCode":`)
	r.StatusCode = d.int()
	d.expect(`,"headers":`)
	r.Headers = d.stringMap()
	d.expect(`,"multiValueHeaders":`)
	r.MultiValueHeaders = d.multiMap()
	d.expect(`,"cookies":`)
	r.Cookies = d.strings()
	d.expect(`,"body":`)
	r.Body = d.string()
	d.expect(`,"isBase64Encoded":`)
	r.IsBase64Encoded = d.bool()
	d.expect("}")
	return r, d.ok && d.i == len(b)
}

// reader reads the stored layout; once ok is false every method returns zero values.
type reader struct {
	b   []byte
	i   int
	ok  bool
	buf []byte
}

func (d *reader) peek(lit string) bool {
	return d.ok && len(d.b)-d.i >= len(lit) && string(d.b[d.i:d.i+len(lit)]) == lit
}

func (d *reader) expect(lit string) {
	if d.peek(lit) {
		d.i += len(lit)
		return
	}
	d.ok = false
}

func (d *reader) int() int {
	if !d.ok {
		return 0
	}
	start, neg := d.i, false
	if d.i < len(d.b) && d.b[d.i] == '-' {
		neg = true
		d.i++
	}
	digits := d.i
	var n int
	for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
		n = n*10 + int(d.b[d.i]-'0')
		d.i++
	}
	// One to 18 digits, no leading zero: anything else is json.Unmarshal's to judge.
	if l := d.i - digits; l == 0 || l > 18 || (l > 1 && d.b[digits] == '0') {
		d.ok, d.i = false, start
		return 0
	}
	if neg {
		return -n
	}
	return n
}

func (d *reader) bool() bool {
	switch {
	case d.peek("true"):
		d.i += 4
		return true
	case d.peek("false"):
		d.i += 5
	default:
		d.ok = false
	}
	return false
}

func (d *reader) stringMap() map[string]string { return readObject(d, d.string) }

func (d *reader) multiMap() map[string][]string { return readObject(d, d.strings) }

// readObject reads a JSON object (or null) whose members' values value reads.
func readObject[V any](d *reader, value func() V) map[string]V {
	if d.peek("null") {
		d.i += 4
		return nil
	}
	d.expect("{")
	m := map[string]V{}
	if d.peek("}") {
		d.i++
		return m
	}
	for d.ok {
		k := d.string()
		d.expect(":")
		m[k] = value()
		if d.peek(",") {
			d.i++
			continue
		}
		d.expect("}")
		break
	}
	return m
}

func (d *reader) strings() []string {
	if d.peek("null") {
		d.i += 4
		return nil
	}
	d.expect("[")
	s := []string{}
	if d.peek("]") {
		d.i++
		return s
	}
	for d.ok {
		s = append(s, d.string())
		if d.peek(",") {
			d.i++
			continue
		}
		d.expect("]")
		break
	}
	return s
}

// string reads a string in the escapes Encode writes and the others JSON allows. It leaves to json.Unmarshal
// what that replaces rather than reads: bytes that are not UTF-8 and unpaired surrogate escapes.
func (d *reader) string() string {
	d.expect(`"`)
	if !d.ok {
		return ""
	}
	start := d.i
	ascii := true
	for d.i < len(d.b) {
		c := d.b[d.i]
		if c == '"' || c == '\\' || c < 0x20 {
			break
		}
		if c >= utf8.RuneSelf {
			ascii = false
		}
		d.i++
	}
	plain := d.b[start:d.i]
	if !ascii && !utf8.Valid(plain) {
		d.ok = false
		return ""
	}
	if d.peek(`"`) {
		d.i++
		return string(plain)
	}
	d.buf = append(d.buf[:0], plain...)
	for d.ok {
		if d.i >= len(d.b) {
			d.ok = false
			break
		}
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			return string(d.buf)
		case c == '\\':
			d.escape()
		case c < 0x20:
			d.ok = false
		default:
			run := d.i
			for d.i < len(d.b) && d.b[d.i] != '"' && d.b[d.i] != '\\' && d.b[d.i] >= 0x20 {
				d.i++
			}
			if !utf8.Valid(d.b[run:d.i]) {
				d.ok = false
			}
			d.buf = append(d.buf, d.b[run:d.i]...)
		}
	}
	return ""
}

// escape decodes the escape at d.i into d.buf.
func (d *reader) escape() {
	if len(d.b)-d.i < 2 {
		d.ok = false
		return
	}
	c := d.b[d.i+1]
	switch c {
	case '"', '\\', '/':
	case 'b':
		c = '\b'
	case 'f':
		c = '\f'
	case 'n':
		c = '\n'
	case 'r':
		c = '\r'
	case 't':
		c = '\t'
	case 'u':
		r, ok := d.hex4(d.i + 2)
		d.i += 6
		if ok && r >= 0xD800 && r < 0xDC00 && d.peek(`\u`) {
			lo, lok := d.hex4(d.i + 2)
			if lok && lo >= 0xDC00 && lo < 0xE000 {
				d.i += 6
				d.buf = utf8.AppendRune(d.buf, 0x10000+(r-0xD800)<<10+(lo-0xDC00))
				return
			}
		}
		if !ok || (r >= 0xD800 && r < 0xE000) {
			d.ok = false
			return
		}
		d.buf = utf8.AppendRune(d.buf, r)
		return
	default:
		d.ok = false
		return
	}
	d.buf = append(d.buf, c)
	d.i += 2
}

func (d *reader) hex4(i int) (rune, bool) {
	if len(d.b)-i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range d.b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}
