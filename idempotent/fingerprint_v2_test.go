package idempotent_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gowebpki/jcs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/idempotenttest"
	"github.com/idemkit/idemkit/idempotent/memstore"
)

func TestExactJSON(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"Sorted", `{"b":[true,null,"x"],"a":{"d":1e2,"c":-0}}`, `{"a":{"c":-0,"d":1e2},"b":[true,null,"x"]}`},
		{"NumbersAsWritten", `[1, 1.0, 1e0, 1E+0, 100, 1e2, -0, 0.0, 9007199254740993, 1e-400, 1e400, 2e3]`,
			`[1,1.0,1e0,1E+0,100,1e2,-0,0.0,9007199254740993,1e-400,1e400,2e3]`},
		{"StringsCanonical", `"\u0041\/\u00e9\ud83d\ude00\u001F"`, "\"A/é😀\\u001f\""},
		{"NamesSortByUTF16", `{"\ufb33":1,"\ud83d\ude00":2,"a":3}`, "{\"a\":3,\"😀\":2,\"\ufb33\":1}"},
		{"InvalidUTF8KeptAsIs", "[\"\xff\",\"\xc3\"]", "[\"\xff\",\"\xc3\"]"},
		{"WhitespaceAndOrderNested", " {\"z\" : { \"b\":[1, 2], \"a\" : {}} , \"a\":\"\"} ", `{"a":"","z":{"a":{},"b":[1,2]}}`},
		{"CaseDifferentNamesApart", `{"a":{"x":1},"b":{"X":1}}`, `{"a":{"x":1},"b":{"X":1}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := idempotent.ExactJSON([]byte(tc.in))
			require.NoError(t, err)
			assert.Equal(t, tc.want, string(got))
		})
	}
}

func TestExactJSONRefusesAmbiguousNames(t *testing.T) {
	for _, tc := range []struct{ name, in string }{
		{"ExactDuplicate", `{"a":1,"a":2}`},
		{"CaseFolded", `{"amount":1,"AMOUNT":2}`},
		{"CaseFoldedReversed", `{"AMOUNT":2,"amount":1}`},
		{"CaseFoldedNested", `[{"x":{"Name":1,"name":2}}]`},
		{"EscapedCaseFolded", `{"a":1,"\u0041":2}`},
		{"KelvinSign", `{"kind":1,"\u212aind":2}`},
		{"LongS", `{"s":1,"\u017f":2}`},
		{"NonASCIIFold", `{"é":1,"É":2}`},
		{"InvalidUTF8BothReadAsReplacement", "{\"\xff\":1,\"\xfe\":2}"},
		{"ManyMembers", `{` + manyMembers(40) + `,"M7":0}`},
		{"LongerThanTheKey", `{"description_long":1,"x":0,"DESCRIPTION_LONG":2}`},
		{"ControlCharacters", `{"a\u0001":1,"A\u0001":2}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := idempotent.ExactJSON([]byte(tc.in))
			require.Error(t, err)
		})
	}
	// Names that differ under folding stay apart, in small and large objects.
	for _, doc := range []string{`{"a":1,"b":2,"ab":3,"A_":4}`, `{` + manyMembers(40) + `}`, `{"k":1,"K2":2}`,
		// Pairs the cheap ASCII key cannot tell apart (they differ in bit 0x20 only), which the exact check does.
		"{\"a[\":1,\"a{\":2,\"@\":3,\"`\":4,\"_\":5,\"\\u007f\":6,\"\\u0001\":7,\"!\":8,\"\":9,\" \":10}",
		`{"description_a":1,"DESCRIPTION_B":2}`, `{"é":1,"e":2,"k":3}`} {
		_, err := idempotent.ExactJSON([]byte(doc))
		require.NoError(t, err, doc)
	}
}

func manyMembers(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf(`"m%d":%d`, n-i, i)
	}
	return strings.Join(parts, ",")
}

// v2Field appends s length-prefixed, as the fingerprint's documented input does.
func v2Field(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(len(s)))
	return append(b, s...)
}

// TestFingerprintV2Documented recomputes version 2 fingerprints from their documented input, independently of the
// implementation: "v2:" and the unpadded base64url SHA-256 of "idemkit/fp/v2", then method, route, path, query,
// header and the payload's kind and form, each length-prefixed.
func TestFingerprintV2Documented(t *testing.T) {
	sum := func(t idempotent.Target, kind, form string) string {
		b := []byte("idemkit/fp/v2")
		for _, f := range []string{t.Method, t.Route, t.Path, t.Query, t.Header, kind, form} {
			b = v2Field(b, f)
		}
		h := sha256.Sum256(b)
		return "v2:" + base64.RawURLEncoding.EncodeToString(h[:])
	}
	target := idempotent.Target{Method: "POST", Route: "/orders/{id}", Path: "/orders/42", Query: "raw:a=1", Header: "h"}
	for _, tc := range []struct{ name, body, kind, form string }{
		{"JSON", `{ "b" : 1.50, "a" : "\u0041" }`, "json", `{"a":"A","b":1.50}`},
		{"Ambiguous", `{"a":1,"A":2}`, "raw", `{"a":1,"A":2}`},
		{"NotJSON", `a=1&b=2`, "raw", `a=1&b=2`},
		{"Empty", ``, "raw", ``},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := sum(target, tc.kind, tc.form)
			assert.Equal(t, want, target.Fingerprint([]byte(tc.body)))
			assert.Equal(t, want, target.FingerprintString(tc.body))
		})
	}
	assert.Equal(t, sum(idempotent.Target{Method: "POST", Route: "/r"}, "json", "[]"), idempotent.Fingerprint("POST", "/r", []byte(" [ ] ")))
}

// TestFingerprintTellsApartWhatHandlersReadApart holds the bodies of issue 10 that version 1 merged: each pair is
// read differently by encoding/json (typed fields, map[string]any with UseNumber), so it must not share a
// fingerprint, and with version 1 it did.
func TestFingerprintTellsApartWhatHandlersReadApart(t *testing.T) {
	for _, tc := range []struct{ name, a, b string }{
		{"BeyondDoublePrecision", `{"n":9007199254740993}`, `{"n":9007199254740992}`},
		{"FractionOnInteger", `{"n":1.0}`, `{"n":1}`},
		{"ExponentOnInteger", `{"n":1e2}`, `{"n":100}`},
		{"Underflow", `{"n":1e-400}`, `{"n":0}`},
		{"AmountInExponent", `{"amount":2e3}`, `{"amount":2000}`},
		{"NegativeZero", `{"n":-0}`, `{"n":0}`},
		{"CaseFoldedOrder", `{"amount":1,"AMOUNT":2}`, `{"AMOUNT":2,"amount":1}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, idempotent.LegacyFingerprint("POST", "/r", []byte(tc.a)), idempotent.LegacyFingerprint("POST", "/r", []byte(tc.b)),
				"version 1 merged these (the case this test exists for)")
			assert.NotEqual(t, idempotent.Fingerprint("POST", "/r", []byte(tc.a)), idempotent.Fingerprint("POST", "/r", []byte(tc.b)))
		})
	}
	// Exact duplicates were already hashed raw by version 1; they still are.
	assert.NotEqual(t, idempotent.Fingerprint("POST", "/r", []byte(`{"amount":1,"amount":2}`)),
		idempotent.Fingerprint("POST", "/r", []byte(`{"amount":2,"amount":1}`)))
	// What encoding/json reads alike still shares a fingerprint.
	for _, tc := range []struct{ name, a, b string }{
		{"MemberOrder", `{"a":1,"b":{"c":[1,2],"d":null}}`, `{"b":{"d":null,"c":[1,2]},"a":1}`},
		{"Whitespace", `{"a":1,"b":[true,false]}`, " {\n\t\"a\" : 1 ,\r\n \"b\" : [ true , false ] } "},
		{"StringEscapes", `{"s":"A/é\n"}`, `{"s":"\u0041\/\u00e9\u000a"}`},
		{"NameEscapes", `{"amount":1}`, `{"\u0061mount":1}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, idempotent.Fingerprint("POST", "/r", []byte(tc.a)), idempotent.Fingerprint("POST", "/r", []byte(tc.b)))
		})
	}
	// Every field of the target counts, and none bleeds into the next.
	base := idempotent.Target{Method: "POST", Route: "/r/{id}", Path: "/r/1", Query: "raw:a=1", Header: "x"}
	fp := base.Fingerprint([]byte(`{}`))
	for name, other := range map[string]idempotent.Target{
		"Method": {Method: "PUT", Route: "/r/{id}", Path: "/r/1", Query: "raw:a=1", Header: "x"},
		"Route":  {Method: "POST", Route: "/s/{id}", Path: "/r/1", Query: "raw:a=1", Header: "x"},
		"Path":   {Method: "POST", Route: "/r/{id}", Path: "/r/2", Query: "raw:a=1", Header: "x"},
		"Query":  {Method: "POST", Route: "/r/{id}", Path: "/r/1", Query: "raw:a=2", Header: "x"},
		"Header": {Method: "POST", Route: "/r/{id}", Path: "/r/1", Query: "raw:a=1", Header: "y"},
		"Shift":  {Method: "POST", Route: "/r/{id}", Path: "/r/1raw:a=1", Query: "", Header: "x"},
	} {
		assert.NotEqual(t, fp, other.Fingerprint([]byte(`{}`)), name)
	}
}

// TestExactJSONMatchesJCSOnOrderAndStrings keeps jcs as the oracle for what the exact form shares with RFC 8785:
// member order (UTF-16 code units) and the spelling of strings. jcs is no oracle for numbers any more (it writes
// them as doubles, which is the flaw version 2 fixes), so the generated documents hold only numbers whose literal
// is already RFC 8785's spelling; on those the two forms must be byte for byte equal. On every document, numbers of
// any spelling included, the exact form must mean to jcs what the document does (jcs of both agree).
func TestExactJSONMatchesJCSOnOrderAndStrings(t *testing.T) {
	rng := rand.New(rand.NewPCG(10, 8785))
	names := []string{"a", "b", "aa", "", "1", "é", `\u00e9`, "€", `\u20ac`, "😀", `\ud83d\ude00`, "\ufb33", `\ufb33`,
		"\uffff", "\U00010000", `\n`, `\u0000`, `\"`, `\\`, "\xff", "z\x80", "ö", "\u0080", `\/`, "x"}
	jcsNumbers := []string{"0", "1", "-1", "0.5", "123456789012345", "1e+21", "1e-7", "0.000001", "-10.1"}
	otherNumbers := []string{"1.0", "1e2", "-0", "2E3", "9007199254740993", "0.10", "1e-400"}
	gen := func(numbers []string) string {
		var g func(depth int) string
		space := func() string { return []string{"", "", " ", "\n\t"}[rng.IntN(4)] }
		g = func(depth int) string {
			k := rng.IntN(10)
			if depth > 4 {
				k = 4 + rng.IntN(6)
			}
			switch {
			case k < 2:
				var parts []string
				used := map[string]bool{}
				for range rng.IntN(6) {
					n := names[rng.IntN(len(names))] + names[rng.IntN(len(names))]
					if used[n] {
						continue
					}
					used[n] = true
					parts = append(parts, space()+`"`+n+`"`+space()+":"+g(depth+1))
				}
				return "{" + strings.Join(parts, ",") + space() + "}"
			case k < 4:
				parts := make([]string, rng.IntN(4))
				for i := range parts {
					parts[i] = g(depth + 1)
				}
				return "[" + strings.Join(parts, ",") + "]"
			case k < 6:
				return space() + `"` + names[rng.IntN(len(names))] + names[rng.IntN(len(names))] + `"`
			case k < 9:
				return numbers[rng.IntN(len(numbers))]
			default:
				return []string{"true", "false", "null"}[rng.IntN(3)]
			}
		}
		return g(0)
	}
	compared, meant := 0, 0
	for range 5000 {
		doc := []byte(gen(jcsNumbers))
		exact, err := idempotent.ExactJSON(doc)
		want, jerr := jcsCanonical(doc)
		if err == nil && jerr == nil {
			compared++
			require.Equal(t, string(want), string(exact), "document %q", doc)
		}
		doc = []byte(gen(append(jcsNumbers, otherNumbers...)))
		if exact, err = idempotent.ExactJSON(doc); err != nil {
			continue
		}
		want, jerr = jcsCanonical(doc)
		if jerr != nil {
			continue // 1e400 and the like, which jcs refuses
		}
		again, err := jcs.Transform(exact)
		require.NoError(t, err)
		require.Equal(t, string(want), string(again), "document %q", doc)
		meant++
	}
	assert.Greater(t, compared, 2000)
	assert.Greater(t, meant, 2000)
}

// jsonValue generates random JSON as a tree, which can be written in several spellings of one meaning.
type jsonValue struct {
	kind    byte // 'o' object, 'a' array, 's' string, 'n' number, 'l' literal
	scalar  string
	names   []string
	members []*jsonValue
}

func genValue(rng *rand.Rand, depth int) *jsonValue {
	k := rng.IntN(10)
	if depth > 3 {
		k = 4 + rng.IntN(6)
	}
	switch {
	case k < 2:
		v := &jsonValue{kind: 'o'}
		folded := map[string]bool{}
		for range rng.IntN(6) {
			name := []string{"amount", "currency", "id", "name", "é", "items", "x", "€uro", "k", "n2"}[rng.IntN(10)] +
				strconv.Itoa(rng.IntN(3))
			if folded[strings.ToUpper(name)] {
				continue
			}
			folded[strings.ToUpper(name)] = true
			v.names = append(v.names, name)
			v.members = append(v.members, genValue(rng, depth+1))
		}
		return v
	case k < 4:
		v := &jsonValue{kind: 'a'}
		for range rng.IntN(4) {
			v.members = append(v.members, genValue(rng, depth+1))
		}
		return v
	case k < 6:
		return &jsonValue{kind: 's', scalar: []string{"usd", "Alice", "é", "a\"b", "line\nbreak", "😀", "", "2000"}[rng.IntN(8)]}
	case k < 9:
		return &jsonValue{kind: 'n', scalar: []string{"0", "1", "-1", "2000", "1.5", "1.0", "1e2", "100", "2e3",
			"9007199254740993", "9007199254740992", "0.1", "-0", "1E+2", "12345678901234567890"}[rng.IntN(15)]}
	default:
		return &jsonValue{kind: 'l', scalar: []string{"true", "false", "null"}[rng.IntN(3)]}
	}
}

// spelling writes v; with vary, in a random member order, with random whitespace and random escapes of string
// characters: spellings encoding/json reads alike.
func (v *jsonValue) spelling(rng *rand.Rand, vary bool) string {
	ws := func() string {
		if !vary {
			return ""
		}
		return []string{"", "", " ", "\n", "\t ", "\r\n"}[rng.IntN(6)]
	}
	str := func(s string) string {
		b, _ := json.Marshal(s)
		if !vary {
			return string(b)
		}
		var out strings.Builder
		out.WriteByte('"')
		for _, r := range s {
			switch {
			case r == '"' || r == '\\' || r < 0x20:
				q, _ := json.Marshal(string(r))
				out.Write(q[1 : len(q)-1])
			case r < 0x10000 && rng.IntN(3) == 0:
				fmt.Fprintf(&out, `\u%04x`, r)
			default:
				out.WriteRune(r)
			}
		}
		out.WriteByte('"')
		return out.String()
	}
	switch v.kind {
	case 'o':
		order := make([]int, len(v.names))
		for i := range order {
			order[i] = i
		}
		if vary {
			rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		}
		parts := make([]string, len(order))
		for i, k := range order {
			parts[i] = ws() + str(v.names[k]) + ws() + ":" + ws() + v.members[k].spelling(rng, vary) + ws()
		}
		return "{" + strings.Join(parts, ",") + ws() + "}"
	case 'a':
		parts := make([]string, len(v.members))
		for i, m := range v.members {
			parts[i] = ws() + m.spelling(rng, vary) + ws()
		}
		return "[" + strings.Join(parts, ",") + "]"
	case 's':
		return str(v.scalar)
	default:
		return v.scalar
	}
}

// mutate changes one thing in a copy of v: a number's literal, a string's text, a member name's case or text, an
// added or removed member or element.
func (v *jsonValue) mutate(rng *rand.Rand) *jsonValue {
	c := *v
	c.names = append([]string(nil), v.names...)
	c.members = append([]*jsonValue(nil), v.members...)
	if len(c.members) > 0 && rng.IntN(3) > 0 {
		i := rng.IntN(len(c.members))
		c.members[i] = c.members[i].mutate(rng)
		return &c
	}
	switch c.kind {
	case 'o':
		switch {
		case len(c.names) > 0 && rng.IntN(2) == 0:
			i := rng.IntN(len(c.names))
			// A name in another case: a struct field still matches it, a map key does not.
			c.names[i] = strings.ToUpper(c.names[i])
			if c.names[i] == v.names[i] {
				c.names[i] += "x"
			}
		case len(c.names) > 0 && rng.IntN(2) == 0:
			// A second member whose name folds to an existing one's.
			i := rng.IntN(len(c.names))
			c.names = append(c.names, strings.ToUpper(c.names[i]))
			c.members = append(c.members, &jsonValue{kind: 'n', scalar: "7"})
		default:
			c.names = append(c.names, "added")
			c.members = append(c.members, &jsonValue{kind: 'l', scalar: "null"})
		}
	case 'a':
		if len(c.members) > 0 && rng.IntN(2) == 0 {
			c.members = c.members[1:]
		} else {
			c.members = append(c.members, &jsonValue{kind: 'n', scalar: "0"})
		}
	case 'n':
		c.scalar = map[string]string{"1": "1.0", "1.0": "1", "100": "1e2", "1e2": "100", "2000": "2e3", "2e3": "2000",
			"9007199254740993": "9007199254740992", "9007199254740992": "9007199254740993", "-0": "0", "0": "-0",
			"1E+2": "1e2", "0.1": "0.10", "1.5": "1.50", "-1": "-1.0", "12345678901234567890": "12345678901234567891"}[c.scalar]
	case 's':
		c.scalar += "!"
	default:
		c.scalar = map[string]string{"true": "false", "false": "null", "null": "true"}[c.scalar]
	}
	return &c
}

// decodedAlike reports whether encoding/json reads a and b alike: into any with UseNumber, and into any after
// a round trip through a struct-like case-insensitive reading (names folded, the last match winning).
func decodedAlike(t *testing.T, a, b string) bool {
	read := func(doc string) any {
		dec := json.NewDecoder(strings.NewReader(doc))
		dec.UseNumber()
		var v any
		require.NoError(t, dec.Decode(&v), doc)
		return v
	}
	return reflect.DeepEqual(read(a), read(b)) && reflect.DeepEqual(foldedRead(t, a), foldedRead(t, b))
}

// foldedRead reads doc as a struct with a field for every name would: members matched by upper-cased name, the
// last one winning.
func foldedRead(t *testing.T, doc string) any {
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.UseNumber()
	var read func() any
	read = func() any {
		tok, err := dec.Token()
		require.NoError(t, err)
		switch tok {
		case json.Delim('{'):
			m := map[string]any{}
			for dec.More() {
				name, err := dec.Token()
				require.NoError(t, err)
				m[strings.ToUpper(name.(string))] = read()
			}
			_, _ = dec.Token()
			return m
		case json.Delim('['):
			var a []any
			for dec.More() {
				a = append(a, read())
			}
			_, _ = dec.Token()
			return a
		}
		return tok
	}
	return read()
}

// TestFingerprintProperty is the property test of version 2 over generated JSON: every spelling of a document
// that encoding/json reads alike (member order, whitespace, string escapes) keeps its fingerprint, and every
// mutation that changes what encoding/json reads changes it.
func TestFingerprintProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(2026, 10))
	fp := func(doc string) string { return idempotent.FingerprintString("POST", "/r", doc) }
	changed := 0
	for i := range 3000 {
		v := genValue(rng, 0)
		if i%2 == 0 {
			v = &jsonValue{kind: 'o', names: []string{"amount", "meta"}, members: []*jsonValue{genValue(rng, 2), v}}
		}
		plain := v.spelling(rng, false)
		require.True(t, json.Valid([]byte(plain)), plain)
		want := fp(plain)
		for range 3 {
			other := v.spelling(rng, true)
			require.True(t, decodedAlike(t, plain, other), "generator: %q and %q should mean the same", plain, other)
			require.Equal(t, want, fp(other), "a re-spelling changed the fingerprint: %q vs %q", plain, other)
		}
		m := v.mutate(rng).spelling(rng, true)
		if decodedAlike(t, plain, m) {
			continue // a mutation encoding/json does not see (the value under a folded-away duplicate)
		}
		changed++
		require.NotEqual(t, want, fp(m), "a change encoding/json reads kept the fingerprint: %q vs %q", plain, m)
	}
	assert.Greater(t, changed, 2500, "most mutations should change what encoding/json reads")
}

func TestSelectFieldsCaseFolding(t *testing.T) {
	sel := func(doc string, paths ...string) string {
		got, err := idempotent.SelectFields([]byte(doc), paths)
		require.NoError(t, err)
		return string(got)
	}
	fp := func(doc string, paths ...string) string {
		return idempotent.Fingerprint("POST", "/r", []byte(sel(doc, paths...)))
	}
	// Unambiguous selections are the object of their paths, values as written.
	assert.JSONEq(t, `{"amount":2e3,"meta.order":{"b":1,"a":2},"missing":null}`,
		sel(`{"amount":2e3,"meta":{"order":{"b":1,"a":2}},"ts":"now"}`, "amount", "meta.order", "missing", "amount"))
	assert.Equal(t, fp(`{"amount":2000,"ts":1}`, "amount"), fp(`{"ts":2,"amount":2000}`, "amount"), "unselected fields do not count")
	assert.NotEqual(t, fp(`{"amount":2000}`, "amount"), fp(`{"amount":2e3}`, "amount"))
	// Issue 10, case 2: a struct reads 2 from the first body and 1 from the second.
	assert.NotEqual(t, fp(`{"amount":1,"AMOUNT":2}`, "amount"), fp(`{"amount":1}`, "amount"))
	assert.NotEqual(t, fp(`{"amount":1,"AMOUNT":2}`, "amount"), fp(`{"AMOUNT":2,"amount":1}`, "amount"))
	// A struct reads 2 and 3 where an exact lookup finds nothing in either.
	assert.NotEqual(t, fp(`{"AMOUNT":2}`, "amount"), fp(`{"AMOUNT":3}`, "amount"))
	assert.NotEqual(t, fp(`{"meta":{"Order":1}}`, "meta.order"), fp(`{"meta":{"Order":2}}`, "meta.order"))
	// The ambiguous selection is the whole document in an array, which no unambiguous selection (an object) equals.
	assert.Equal(t, `[{"AMOUNT":2}]`, sel(`{"AMOUNT":2}`, "amount"))
	// An ambiguous object inside a selected value makes the selection hash raw, apart from its reorderings.
	assert.NotEqual(t, fp(`{"x":{"a":1,"A":2}}`, "x"), fp(`{"x":{"A":2,"a":1}}`, "x"))
	_, err := idempotent.SelectFields([]byte(`{"a":`), []string{"a"})
	require.Error(t, err)
}

// TestSelectFieldsExact pins the bytes of selections (JSONEq would merge a repeated member): a path named twice
// counts once, whitespace before a document or a value is skipped, a path through a value that is not an object
// selects null, and two members that match one segment make it ambiguous whichever comes last.
func TestSelectFieldsExact(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		paths     []string
		want      string
	}{
		{"RepeatedPath", `{"a":1,"b":2}`, []string{"a", "b", "a"}, `{"a":1,"b":2}`},
		{"SpaceBeforeDocument", " \t\r\n{\"a\":1}", []string{"a"}, `{"a":1}`},
		{"SpaceBeforeValue", `{"a": {"b": 1}}`, []string{"a.b"}, `{"a.b":1}`},
		{"ThroughNumber", `{"a":1}`, []string{"a.b"}, `{"a.b":null}`},
		{"ThroughArray", `{"a":[{"b":1}]}`, []string{"a.b"}, `{"a.b":null}`},
		{"Missing", `{"a":1}`, []string{"c"}, `{"c":null}`},
		{"ExactLast", `{"A":2,"a":1}`, []string{"a"}, `[{"A":2,"a":1}]`},
		{"ExactFirst", `{"a":1,"A":2}`, []string{"a"}, `[{"a":1,"A":2}]`},
		{"ExactTwice", `{"a":1,"a":2}`, []string{"a"}, `[{"a":1,"a":2}]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := idempotent.SelectFields([]byte(tc.doc), tc.paths)
			require.NoError(t, err)
			assert.Equal(t, tc.want, string(got))
		})
	}
}

// TestLegacyRecordsCompareTheOldWay stores a record as the release before fingerprint version 2 wrote it (a bare
// hex SHA-256) and checks that a retry still gets its replay, that another payload is still a mismatch, and that
// the version 1 fingerprint is computed only for such a record.
func TestLegacyRecordsCompareTheOldWay(t *testing.T) {
	const key = "8e03978e-40d5-43e8-bc93-6894a57f9324"
	// The golden version 1 fingerprint of this body on POST /payments (TestFingerprintGolden).
	const body = `{"amount":2000,"currency":"usd","meta":{"a":1,"b":[1,2]}}`
	const legacyFP = "88dc2f5e789dc0d903884c184890c2ce9ff8d348d246fa1be30775a6be843f30"
	scope := idempotent.Scope{Principal: "anonymous", Method: "POST", Route: "/payments"}
	ctx := context.Background()
	clk := idempotenttest.NewClock(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	store := memstore.New()
	storeCompleted(t, store, scope.ID(key), legacyFP, []byte(`"recorded by the old release"`), clk.Now())
	e := idempotent.New(store, idempotent.WithClock(clk), idempotent.WithDisabled(false))

	request := func(body string, legacy *int) idempotent.Request {
		req := idempotent.Request{Key: key, Scope: scope, Fingerprint: idempotent.Fingerprint("POST", "/payments", []byte(body))}
		if legacy != nil {
			req.LegacyFingerprint = idempotent.LegacyFingerprintFunc(func() string {
				*legacy++
				return idempotent.LegacyFingerprint("POST", "/payments", []byte(body))
			})
		}
		return req
	}
	run := func(req idempotent.Request) (idempotent.Result[string], error) {
		return idempotent.Run(ctx, e, req, idempotent.Spec[string]{}, func(context.Context) (string, error) {
			return "executed again", nil
		})
	}
	var calls int
	// The same body, re-spelled, as the old release canonicalised it.
	res, err := run(request(`{"meta":{"b":[1,2],"a":1.0},"currency":"usd","amount":2e3}`, &calls))
	require.NoError(t, err)
	assert.True(t, res.Replayed())
	assert.Equal(t, "recorded by the old release", res.Value)
	assert.Equal(t, 1, calls)

	_, err = run(request(`{"amount":2500,"currency":"usd","meta":{"a":1,"b":[1,2]}}`, &calls))
	require.ErrorIs(t, err, idempotent.ErrPayloadMismatch)
	assert.Equal(t, 2, calls)

	_, err = run(request(body, nil))
	require.ErrorIs(t, err, idempotent.ErrPayloadMismatch, "without a way to compute the old fingerprint, a mismatch")

	// A record of this release is compared as stored: the old fingerprint is never computed.
	calls = 0
	fresh := request(body, &calls)
	fresh.Key = "another-key"
	_, err = run(fresh)
	require.NoError(t, err)
	res, err = run(fresh)
	require.NoError(t, err)
	assert.True(t, res.Replayed())
	assert.Zero(t, calls)
	other := request(`{"amount":1}`, &calls)
	other.Key = "another-key"
	_, err = run(other)
	require.ErrorIs(t, err, idempotent.ErrPayloadMismatch)
	assert.Zero(t, calls)
}

func TestIsLegacyFingerprint(t *testing.T) {
	for fp, want := range map[string]bool{
		"88dc2f5e789dc0d903884c184890c2ce9ff8d348d246fa1be30775a6be843f30":    true,
		"88DC2F5E789DC0D903884C184890C2CE9FF8D348D246FA1BE30775A6BE843F30":    false,
		"88dc2f5e789dc0d903884c184890c2ce9ff8d348d246fa1be30775a6be843f3":     false,
		"88dc2f5e789dc0d903884c184890c2ce9ff8d348d246fa1be30775a6be843f300":   false,
		"v2:88dc2f5e789dc0d903884c184890c2ce9ff8d348d246fa1be30775a6be843f30": false,
		"g8dc2f5e789dc0d903884c184890c2ce9ff8d348d246fa1be30775a6be843f30":    false,
		"": false,
	} {
		assert.Equal(t, want, idempotent.IsLegacyFingerprint(fp), fp)
	}
	assert.False(t, idempotent.IsLegacyFingerprint(idempotent.Fingerprint("POST", "/r", nil)))
	assert.True(t, bytes.HasPrefix([]byte(idempotent.Fingerprint("POST", "/r", nil)), []byte(idempotent.FingerprintVersion)))
}

// TestScopeFunction checks that the function is part of a scope's ID, and that a scope without one keeps the ID
// of earlier releases (TestScopeIDGolden).
func TestScopeFunction(t *testing.T) {
	s := idempotent.Scope{Principal: "anonymous", Method: "POST", Route: "/payments"}
	withFn := s
	withFn.Function = "PaymentFunction"
	other := s
	other.Function = "UserFunction"
	assert.NotEqual(t, s.ID("k"), withFn.ID("k"))
	assert.NotEqual(t, withFn.ID("k"), other.ID("k"))
	assert.Equal(t, withFn.ID("k"), withFn.ID("k"))
	shifted := idempotent.Scope{Function: "PaymentFunctionanonymous", Method: "POST", Route: "/payments"}
	assert.NotEqual(t, withFn.ID("k"), shifted.ID("k"))

	// The documented form, computed independently: SHA-256 of "idemkit/id/v2" and the length-prefixed function,
	// principal, method, route and key. Records are stored under it, so it must not change.
	h := sha256.New()
	h.Write([]byte("idemkit/id/v2"))
	for _, field := range []string{"PaymentFunction", "anonymous", "POST", "/payments", "k"} {
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(field))))
		h.Write([]byte(field))
	}
	assert.Equal(t, hex.EncodeToString(h.Sum(nil)), withFn.ID("k"))
}

// oldSelectFields is SelectFields as releases before fingerprint version 2 wrote it: a map decoded with UseNumber,
// marshalled again.
func oldSelectFields(t *testing.T, doc []byte, paths []string) []byte {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var root any
	require.NoError(t, dec.Decode(&root))
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
	b, err := json.Marshal(out)
	require.NoError(t, err)
	return b
}

// TestSelectFieldsKeepsLegacyFingerprints: records of earlier releases with WithPayloadFields hold the version 1
// fingerprint of the old selection; the new selection of the same body must have the same version 1 fingerprint,
// or their retries would be mismatches.
func TestSelectFieldsKeepsLegacyFingerprints(t *testing.T) {
	rng := rand.New(rand.NewPCG(10, 2))
	paths := []string{"amount", "meta", "meta.amount", "missing", "items"}
	for range 500 {
		v := &jsonValue{kind: 'o', names: []string{"amount", "meta", "items", "ts"},
			members: []*jsonValue{genValue(rng, 3), genValue(rng, 1), genValue(rng, 2), genValue(rng, 4)}}
		doc := []byte(v.spelling(rng, true))
		sel, err := idempotent.SelectFields(doc, paths)
		require.NoError(t, err)
		if sel[0] == '[' {
			continue // case-ambiguous, which the old selection merged
		}
		assert.Equal(t, idempotent.LegacyFingerprint("", "q", oldSelectFields(t, doc, paths)),
			idempotent.LegacyFingerprint("", "q", sel), "document %s", doc)
	}
}
