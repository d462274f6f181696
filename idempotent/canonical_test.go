package idempotent_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/gowebpki/jcs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/idempotent"
)

func TestCanonicalJSON(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"Sorted", `{"b":[true,null,"x"],"a":{"d":1e2,"c":-0}}`, `{"a":{"c":0,"d":100},"b":[true,null,"x"]}`},
		// RFC 8785 §3.2.2: the example of the serialisation of primitive values.
		{"RFC8785Primitives",
			`{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
			  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
			  "literals": [null, true, false]}`,
			`{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`},
		// RFC 8785 §3.2.3: members sort by UTF-16 code units, so U+1F600 (a surrogate pair) sorts before U+FB33.
		{"RFC8785Sorting",
			`{"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One",
			  "\ud83d\ude00":"Emoji: Grinning Face","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis"}`,
			"{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u0080\":\"Control\",\"ö\":\"Latin Small Letter O With Diaeresis\"," +
				"\"€\":\"Euro Sign\",\"😀\":\"Emoji: Grinning Face\",\"\ufb33\":\"Hebrew Letter Dalet With Dagesh\"}"},
		{"NestedReorders", `{"z":{"y":{"b":2,"a":1},"x":[{"d":4,"c":3}]},"a":0}`,
			`{"a":0,"z":{"x":[{"c":3,"d":4}],"y":{"a":1,"b":2}}}`},
		{"Whitespace", " \t\r\n[ 1 , { \"a\" : [ ] } , \"\" ] \n", `[1,{"a":[]},""]`},
		{"TopLevelScalar", ` 1.50 `, `1.5`},
		{"TopLevelString", `"\u00e9\ud83d\ude00"`, `"é😀"`},
		{"EscapesKeptMinimal", `"\u0000\u001F\u007f\u2028\/\b\f\n\r\t"`, "\"\\u0000\\u001f\x7f\u2028/\\b\\f\\n\\r\\t\""},
		{"EscapedNamesSort", `{"\u0062":1,"a":2}`, `{"a":2,"b":1}`},
		{"InvalidUTF8KeptAsIs", "{\"\xff\":1,\"\xc3\xa9\":2}", "{\"\xc3\xa9\":2,\"\xff\":1}"},
		{"LongIntegers", `[123456789012345,1234567890123456789,-0,100000000000000000000000]`,
			`[123456789012345,1234567890123456800,0,1e+23]`},
		{"Underflow", `[1e-400,-1e-400]`, `[0,0]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := idempotent.CanonicalJSON([]byte(tc.in))
			require.NoError(t, err)
			assert.Equal(t, tc.want, string(got))
		})
	}
}

// TestCanonicalJSONNumbers holds the number examples of RFC 8785 Appendix B, as IEEE 754 bit patterns.
func TestCanonicalJSONNumbers(t *testing.T) {
	for _, tc := range []struct {
		bits uint64
		want string
	}{
		{0x0000000000000000, "0"},
		{0x8000000000000000, "0"},
		{0x0000000000000001, "5e-324"},
		{0x8000000000000001, "-5e-324"},
		{0x7fefffffffffffff, "1.7976931348623157e+308"},
		{0xffefffffffffffff, "-1.7976931348623157e+308"},
		{0x4340000000000000, "9007199254740992"},
		{0xc340000000000000, "-9007199254740992"},
		{0x4430000000000000, "295147905179352830000"},
		{0x44b52d02c7e14af5, "9.999999999999997e+22"},
		{0x44b52d02c7e14af6, "1e+23"},
		{0x44b52d02c7e14af7, "1.0000000000000001e+23"},
		{0x444b1ae4d6e2ef4e, "999999999999999700000"},
		{0x444b1ae4d6e2ef4f, "999999999999999900000"},
		{0x444b1ae4d6e2ef50, "1e+21"},
		{0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"},
		{0x3eb0c6f7a0b5ed8d, "0.000001"},
		{0x41b3de4355555553, "333333333.3333332"},
		{0x41b3de4355555554, "333333333.33333325"},
		{0x41b3de4355555555, "333333333.3333333"},
		{0x41b3de4355555556, "333333333.3333334"},
		{0x41b3de4355555557, "333333333.33333343"},
		{0xbecbf647612f3696, "-0.0000033333333333333333"},
		{0x43143ff3c1cb0959, "1424953923781206.2"},
	} {
		f := math.Float64frombits(tc.bits)
		for _, spelling := range []string{strconv.FormatFloat(f, 'g', -1, 64), strconv.FormatFloat(f, 'e', 20, 64)} {
			got, err := idempotent.CanonicalJSON([]byte(spelling))
			require.NoError(t, err, spelling)
			assert.Equal(t, tc.want, string(got), "%016x spelled %s", tc.bits, spelling)
		}
	}
}

func TestCanonicalJSONRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, in, reason string
	}{
		{"Empty", ``, "invalid JSON"},
		{"Truncated", `{"a":`, "invalid JSON"},
		{"TrailingData", `{} {}`, "invalid JSON"},
		{"TrailingComma", `[1,]`, "invalid JSON"},
		{"LeadingZero", `01`, "invalid JSON"},
		{"BareMinus", `-`, "invalid JSON"},
		{"FractionWithoutDigits", `1.`, "invalid JSON"},
		{"ExponentWithoutDigits", `1e+`, "invalid JSON"},
		{"PlusSign", `+1`, "invalid JSON"},
		{"SingleQuotes", `{'a':1}`, "invalid JSON"},
		{"ControlCharacterInString", "\"a\nb\"", "invalid JSON"},
		{"BadEscape", `"\x41"`, "invalid JSON"},
		{"ShortUnicodeEscape", `"\u12"`, "invalid JSON"},
		{"MisspelledLiteral", `[tru]`, "invalid JSON"},
		{"MismatchedBrackets", `[1}`, "invalid JSON"},
		{"ColonMissing", `{"a" 1}`, "invalid JSON"},
		{"NonStringName", `{1:2}`, "invalid JSON"},
		{"ByteOrderMark", "\xef\xbb\xbf{}", "invalid JSON"},
		{"DuplicateName", `{"a":1,"a":2}`, "duplicate member name"},
		{"DuplicateNameUnsorted", `{"b":1,"a":2,"b":3}`, "duplicate member name"},
		{"DuplicateNameEscaped", `{"a":1,"\u0061":2}`, "duplicate member name"},
		// Both names sort as U+FFFD, as they did with jcs.
		{"DuplicateNameInvalidUTF8", "{\"\xff\":1,\"\xfe\":2}", "duplicate member name"},
		{"LoneHighSurrogate", `"\ud800"`, "unpaired surrogate"},
		{"HighSurrogateThenText", `"\ud800abcdef"`, "unpaired surrogate"},
		{"HighSurrogateThenEscape", `["\ud800\u0041"]`, "unpaired surrogate"},
		{"TwoHighSurrogates", `"\ud800\ud800"`, "unpaired surrogate"},
		{"LoneLowSurrogate", `"\udc00"`, "unpaired surrogate"},
		{"SwappedPair", `"\ude00\ud83d"`, "unpaired surrogate"},
		{"SurrogateInName", `{"\ud800":1}`, "unpaired surrogate"},
		{"NumberTooLarge", `1e400`, "out of the range"},
		{"NegativeNumberTooLarge", `[-1.8e308]`, "out of the range"},
		{"TooDeep", strings.Repeat("[", 10001) + strings.Repeat("]", 10001), "nesting deeper than 10000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := idempotent.CanonicalJSON([]byte(tc.in))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.reason)
		})
	}
}

// TestCanonicalJSONErrorOffset: each way a document can end or go wrong inside an array, an object or a string is
// refused, and the error names the offset of the byte that broke it.
func TestCanonicalJSONErrorOffset(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"LowSurrogatePair", `"\udc00\udc00"`, "unpaired surrogate escape at offset 1"},
		{"HighSurrogateAtEnd", `"abcdefghijklmn\ud800`, "unpaired surrogate escape at offset 15"},
		{"PairAtEnd", `"\ud83d\ude00`, "invalid JSON at offset 13"},
		{"HighSurrogateThenShortEscape", `"\ud800\u12"`, "unpaired surrogate escape at offset 1"},
		{"NULInShortString", "\"a\x00b\"", "invalid JSON at offset 2"},
		{"UnterminatedString", `"abc`, "invalid JSON at offset 4"},
		{"UnterminatedLongString", `["abcdefghijklmnop`, "invalid JSON at offset 18"},
		{"ControlByteInLongString", "\"abcdefg\x01hijklmnop\"", "invalid JSON at offset 8"},
		// Upper case and digits: no byte of the word has its high bit set once 0x20 is added to it.
		{"ControlByteAmongCapitals", "\"ABC0123\x01HIJKLMNOP\"", "invalid JSON at offset 8"},
		{"ControlByteInLongName", "{\"abcdefghijklmn\x1fop\":1}", "invalid JSON at offset 16"},
		{"MisspelledTrue", `[tru]`, "invalid JSON at offset 1"},
		{"MisspelledFalse", `[1,fals]`, "invalid JSON at offset 3"},
		{"TruncatedNull", `nul`, "invalid JSON at offset 0"},
		{"EndAfterBrace", `{`, "invalid JSON at offset 1"},
		{"EndAfterBraceAndSpace", `[{ `, "invalid JSON at offset 3"},
		{"EndAfterMemberComma", `{"a":1,`, "invalid JSON at offset 7"},
		{"NonStringName", `{1:2}`, "invalid JSON at offset 1"},
		{"EndAfterName", `{"a"`, "invalid JSON at offset 4"},
		{"ColonMissing", `{"a" 1}`, "invalid JSON at offset 5"},
		{"NameThenBrace", `{"a"}`, "invalid JSON at offset 4"},
		{"EndAfterArrayValue", `[1`, "invalid JSON at offset 2"},
		{"EndAfterObjectValue", `{"a":1 `, "invalid JSON at offset 7"},
		{"ObjectClosedAsArray", `{"a":1]`, "invalid JSON at offset 6"},
		{"ArrayClosedAsObject", `[1}`, "invalid JSON at offset 2"},
		{"NoCommaInArray", `[1 2]`, "invalid JSON at offset 3"},
		{"NoCommaInObject", `{"a":1 "b":2}`, "invalid JSON at offset 7"},
		{"EndAfterComma", `[1,`, "invalid JSON at offset 3"},
		{"EndAfterEscape", `"\n`, "invalid JSON at offset 3"},
		{"EndInEscape", `"\`, "invalid JSON at offset 1"},
		{"EndInNameAfterEscape", `{"\n`, "invalid JSON at offset 4"},
		{"NonHexDigit", `"\u00G1"`, "invalid JSON at offset 1"},
		{"NonHexDigitLast", `"\u000g"`, "invalid JSON at offset 1"},
		{"ShortUnicodeEscape", `"\u12"`, "invalid JSON at offset 1"},
		{"BadLowSurrogateDigits", `"\ud800\uZZZZ"`, "invalid JSON at offset 7"},
		{"LowSurrogateOutOfRange", `"\ud800\ue000"`, "unpaired surrogate escape at offset 1"},
		{"TrailingText", `{} x`, "invalid JSON at offset 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := idempotent.CanonicalJSON([]byte(tc.in))
			require.Error(t, err)
			assert.ErrorContains(t, err, tc.want)
		})
	}
}

// TestCanonicalJSONSurrogatePairBounds: the first and last pairs (U+10000 and U+10FFFF) decode, and the escapes
// just outside the surrogate ranges stand alone.
func TestCanonicalJSONSurrogatePairBounds(t *testing.T) {
	for in, want := range map[string]string{
		`"\ud800\udc00"`: "\"\U00010000\"",
		`"\udbff\udfff"`: "\"\U0010FFFF\"",
		`"\ud7ff"`:       "\"\uD7FF\"",
		`"\ue000"`:       "\"\uE000\"",
		// The escape of a space is the space itself; U+001F stays escaped.
		`"\u0020"`: `" "`,
		`"\u001f"`: `"\u001f"`,
	} {
		out, err := idempotent.CanonicalJSON([]byte(in))
		require.NoError(t, err, in)
		assert.Equal(t, want, string(out), in)
	}
	for _, in := range []string{`"\ud800\ue000"`, `"\udbff\udbff"`} {
		_, err := idempotent.CanonicalJSON([]byte(in))
		assert.ErrorContains(t, err, "unpaired surrogate escape at offset 1", in)
	}
}

// TestCanonicalJSONSameHighSurrogate: member names whose first characters are outside the BMP and share a high
// surrogate sort by the low surrogate, that is by code point (U+1F600 before U+1F601), whatever order they arrive in.
func TestCanonicalJSONSameHighSurrogate(t *testing.T) {
	for _, in := range []string{`{"\ud83d\ude01":1,"\ud83d\ude00":2}`, `{"\ud83d\ude00":2,"\ud83d\ude01":1}`,
		"{\"\U0001F601\":1,\"\U0001F600\":2}"} {
		out, err := idempotent.CanonicalJSON([]byte(in))
		require.NoError(t, err, in)
		assert.Equal(t, "{\"\U0001F600\":2,\"\U0001F601\":1}", string(out), in)
	}
}

// TestExactJSONFoldedNames: the exact form refuses an object two of whose member names encoding/json would match
// to one field, whether the names are ASCII (compared pairwise) or not (compared by fold hash), in either order.
func TestExactJSONFoldedNames(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		refused  bool
	}{
		{"ASCII", `{"amount":1,"AMOUNT":2}`, true},
		{"ASCIIDistinct", `{"amount":1,"amounts":2}`, false},
		{"KelvinFirst", `{"\u212a":1,"k":2}`, true},
		{"KelvinLast", `{"k":1,"\u212a":2}`, true},
		{"NonASCIIThenZ", `{"\u00e9":0,"z":1,"Z":2}`, true},
		{"NonASCIIThenA", `{"\u00e9":0,"a":1,"A":2}`, true},
		{"NonASCIIDistinct", `{"\u00e9":0,"y":1,"Z":2}`, false},
		{"OneMember", `{"\u212a":1}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := idempotent.ExactJSON([]byte(tc.in))
			if tc.refused {
				assert.ErrorContains(t, err, "case folding")
			} else {
				assert.NoError(t, err)
			}
		})
	}
}

// TestCanonicalJSONManyMembers: objects of more than 16 members, which sort another way than small ones, come out
// sorted too.
func TestCanonicalJSONManyMembers(t *testing.T) {
	var in, want strings.Builder
	in.WriteString("{")
	want.WriteString("{")
	for i := 0; i < 20; i++ {
		if i > 0 {
			in.WriteString(",")
			want.WriteString(",")
		}
		fmt.Fprintf(&in, `"m%02d":%d`, 19-i, 19-i)
		fmt.Fprintf(&want, `"m%02d":%d`, i, i)
	}
	in.WriteString("}")
	want.WriteString("}")
	out, err := idempotent.CanonicalJSON([]byte(in.String()))
	require.NoError(t, err)
	assert.Equal(t, want.String(), string(out))
	_, err = idempotent.CanonicalJSON([]byte(strings.Replace(in.String(), `"m03"`, `"m04"`, 1)))
	assert.ErrorContains(t, err, "duplicate member name")
}

func TestCanonicalJSONDepth(t *testing.T) {
	deep := func(n int, open, close string) []byte {
		return []byte(strings.Repeat(open, n) + "0" + strings.Repeat(close, n))
	}
	t.Run("AtTheLimit", func(t *testing.T) {
		got, err := idempotent.CanonicalJSON(deep(10000, "[", "]"))
		require.NoError(t, err)
		assert.Len(t, got, 20001)
		// 10,000 nested objects, each reordered.
		got, err = idempotent.CanonicalJSON(deep(10000, `{"b":1,"a":`, "}"))
		require.NoError(t, err)
		assert.Equal(t, strings.Repeat(`{"a":`, 10000)+"0"+strings.Repeat(`,"b":1}`, 10000), string(got))
		// jcs builds every level's string anew, so it is compared on a shallower document.
		objects := deep(1000, `{"c":{"b":1,"a":2},"b":`, "}")
		got, err = idempotent.CanonicalJSON(objects)
		require.NoError(t, err)
		want, err := jcs.Transform(objects)
		require.NoError(t, err)
		assert.Equal(t, string(want), string(got))
	})
	t.Run("HostileMillionBrackets", func(t *testing.T) {
		// A body of a million '[' is refused once the nesting passes the limit, long before the end of the body
		// and without recursion.
		doc := bytes.Repeat([]byte("["), 1_000_000)
		_, err := idempotent.CanonicalJSON(doc)
		require.ErrorContains(t, err, "nesting deeper than 10000 at offset 10000")
		// Its fingerprint is that of the raw bytes.
		assert.Len(t, idempotent.Fingerprint("POST", "/r", doc), 46)
	})
}

// TestFingerprintGolden pins version 1 fingerprints computed by the jcs-based canonicaliser of earlier releases:
// LegacyFingerprint must reproduce them, so that records stored by those releases keep matching their retries.
func TestFingerprintGolden(t *testing.T) {
	body1KB := `{"amount":2000,"currency":"usd","description":"` + strings.Repeat("x", 900) +
		`","metadata":{"order":"o-123","customer":"c-456","tags":["a","b","c"]}}`
	for _, tc := range []struct {
		name, body, want string
	}{
		{"Empty", ``, "fae43b71ecd2ab5af65036c67cc08b6ac518f721bef2aef1ef8040059d3afda8"},
		{"EmptyObject", `{}`, "d8d229af66e62d38e1fd4908f56d8efe61f882af35c5db3133f70788945f3093"},
		{"EmptyArray", `[]`, "d67d18bebf623d628bf1940e1c89a530d4201f7bc7d3f4a9c5386425170939c4"},
		{"Canonical", `{"amount":2000,"currency":"usd","meta":{"a":1,"b":[1,2]}}`,
			"88dc2f5e789dc0d903884c184890c2ce9ff8d348d246fa1be30775a6be843f30"},
		{"SameReordered", "{\n  \"meta\": {\"b\": [1, 2], \"a\": 1.0},\n  \"currency\": \"\\u0075sd\", \"amount\": 2e3\n}\n",
			"88dc2f5e789dc0d903884c184890c2ce9ff8d348d246fa1be30775a6be843f30"},
		{"Body1KB", body1KB, "b5f9f5288a2bca66079466488f07bafc63a905521e2238bd4471052c96e44963"},
		{"Numbers", `[1e21,1e-7,1e-6,0.1,-0,-0.0,123456789012345678901234,5e-324,1.7976931348623157e308,` +
			`333333333.33333329,1E+30,4.50,2e-3,0.000001,1e20,-1.5e-10,9007199254740993]`,
			"aa81957d0adf4163da1b26d60d6ed716598f2210f322b3d8f3921f11cdc0b3dc"},
		{"Strings", `{"\u20ac":"\u00e9t\u00e9","\ud83d\ude00":"emoji","\ufb01":"ligature",` +
			`"a\u0000b":"\u001f\u007f\b\f\n\r\t\"\\\/","\u2028":"sep"}`,
			"0b94814ba8e1b60a590f650231f2c04f94aabcd427a87ccf39757928ee15989c"},
		{"Nested", `{"b":{"d":[true,false,null],"c":{}},"a":[[],[{}],{"z":"Z","y":"Y"}]}`,
			"b46e17c7819a830e97c149b90fae732656c0421205c35ce6083689873a985afa"},
		{"TopLevelString", `"top level string with \u00e9"`, "ad4b55d6d5e687bf095517518a2c0c78be73dd5e76f7180674ef81b96c31f184"},
		{"TopLevelNumber", `12345`, "6464d1b3edb40ba55f79367a6d1c5ba608c4f0fa71d517ccd2a663edc46c554a"},
		{"TopLevelLiteral", `true`, "39a25b1c8e8301aba45d49447fa891fb4e49cca217cab0471ebe7fc8792c2a91"},
		{"InvalidUTF8", "{\"k\":\"caf\xc3\xa9\",\"\xff\":1,\"\xc3\xa9\":2}", "234beed0e4e3e58bf731fa31652532c782e232fb7219972dda261472ff655f0e"},
		// Refused by both, so hashed raw.
		{"DuplicateName", `{"a":1,"a":2}`, "a82d5fff6bec5739dd8e95fb6e716a9d97f853b1af0337b44965575220b414c5"},
		{"NumberTooLarge", `1e400`, "14e6ce2b025617a3a559c038c0d4041f48d080fd07235fee86a6131549e8cf70"},
		{"NotJSON", `a=1&b=2`, "cb055637048d78c962de75d3d550412518aec92fb126039092c0eb95c13d9987"},
		{"Truncated", `{"a":`, "36a4abf0bf8f982f54d99f25e3e835a1551627d61be4d4119fee04484a835a20"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, idempotent.LegacyFingerprint("POST", "/payments", []byte(tc.body)))
			assert.Equal(t, tc.want, idempotent.LegacyFingerprintString("POST", "/payments", tc.body))
			assert.True(t, idempotent.IsLegacyFingerprint(tc.want))
		})
	}
}

// TestFingerprintChangedCases covers the two kinds of bodies whose version 1 fingerprint changed on purpose when
// jcs was replaced.
func TestFingerprintChangedCases(t *testing.T) {
	fp := func(body string) string { return idempotent.LegacyFingerprint("POST", "/payments", []byte(body)) }
	// jcs refused whitespace around a top-level scalar, so such a body was hashed raw; the whitespace is now
	// insignificant as everywhere else.
	assert.NotEqual(t, "691c80f17383b0efbdd3eaffb3ea09659f6da4412ac180921296426f223ba01c", fp(` 1 `))
	assert.Equal(t, fp(`1`), fp(` 1 `))
	// jcs read an unpaired high surrogate followed by another escape as U+FFFD and dropped the escape, so
	// different payloads shared a fingerprint; such a body is now refused and hashed raw.
	assert.NotEqual(t, "54db6dcd074649c1de6ed2c82bdae512f333b65393a40dc82db81f20517a8ed5", fp(`["\ud800\u0041"]`))
	assert.Equal(t, rawFingerprint("POST", "/payments", `["\ud800\u0041"]`), fp(`["\ud800\u0041"]`))
	assert.NotEqual(t, fp(`["\ud800\u0042"]`), fp(`["\ud800\u0041"]`))
}

// rawFingerprint is the documented version 1 fingerprint of a payload that is not canonical JSON, computed
// independently.
func rawFingerprint(method, route, payload string) string {
	h := sha256.New()
	h.Write([]byte("idemkit/fp/v1"))
	for _, field := range []string{method, route, "raw", payload} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(field)))
		h.Write(n[:])
		h.Write([]byte(field))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestScopeIDGolden pins record IDs computed by earlier releases: a changed ID would orphan every stored record.
func TestScopeIDGolden(t *testing.T) {
	const key = "8e03978e-40d5-43e8-bc93-6894a57f9324"
	for _, tc := range []struct {
		scope idempotent.Scope
		want  string
	}{
		{idempotent.Scope{}, "7953d68811ccc5f401677b46f0f2e2571719b685d276667c6ff2151a8bdee3da"},
		{idempotent.Scope{Principal: "anonymous", Method: "POST", Route: "/payments"},
			"9e218b072a4b53e2823a30caf33c8ccbdb04c478d84884b63dccfb1309c006ef"},
		{idempotent.Scope{Principal: "arn:aws:iam::123456789012:user/alice", Method: "PUT", Route: "/users/{id}"},
			"e9c985512155443b678f4a79cd81fd2ff692f6ec15bbefff00be7609901e2ff7"},
	} {
		assert.Equal(t, tc.want, tc.scope.ID(key), "%+v", tc.scope)
	}
	// Longer than the ID's stack buffer.
	long := idempotent.Scope{Principal: strings.Repeat("p", 600), Method: "POST", Route: "/r"}
	assert.Len(t, long.ID(key), 64)
	assert.NotEqual(t, long.ID(key), idempotent.Scope{Principal: strings.Repeat("p", 599), Method: "POST", Route: "/r"}.ID(key))
}

func TestFingerprintAllocations(t *testing.T) {
	if raceEnabled {
		t.Log("allocation counts are not meaningful under the race detector (sync.Pool drops items on purpose)")
		return
	}
	body := []byte(`{"b":{"d":[1.5e3,"\u00e9",null],"c":{}},"a":[[],[{}],{"z":"Z","y":"Y"}]}`)
	idempotent.Fingerprint("POST", "/payments", body)
	allocs := testing.AllocsPerRun(100, func() { idempotent.Fingerprint("POST", "/payments", body) })
	assert.LessOrEqual(t, allocs, 1.0, "only the returned string")

	// CanonicalJSON and the version 1 fingerprint return their canonicaliser to the pool too.
	bodyString := string(body)
	for name, f := range map[string]func(){
		"CanonicalJSON":           func() { _, _ = idempotent.CanonicalJSON(body) },
		"LegacyFingerprint":       func() { idempotent.LegacyFingerprint("POST", "/payments", body) },
		"LegacyFingerprintString": func() { idempotent.LegacyFingerprintString("POST", "/payments", bodyString) },
	} {
		f()
		assert.LessOrEqual(t, testing.AllocsPerRun(100, f), 1.0, "%s: only the returned value", name)
	}
}

// jcsCanonical is the canonicaliser of earlier releases: encoding/json's validation, then jcs.
func jcsCanonical(doc []byte) ([]byte, error) {
	if !json.Valid(doc) {
		return nil, strconv.ErrSyntax
	}
	return jcs.Transform(doc)
}

// FuzzCanonicalJSON compares CanonicalJSON with jcs on every input and checks the properties a canonical form must
// have: it is JSON, canonicalising it again changes nothing, and it fingerprints like the original.
func FuzzCanonicalJSON(f *testing.F) {
	for _, seed := range []string{
		`{}`, `[]`, `{"b":1,"a":[1,2,{"d":"\u00e9","c":null}]}`, `1e400`, `"\ud800"`, `[[[[[[]]]]]]`, `{"a":1,"a":2}`,
		`-0.0`, ` 1 `, `["\ud800\u0041"]`, `{"\ud83d\ude00":1,"\ufb33":2,"\u00e9":3}`, "{\"\xff\":1,\"\xc3\":2}",
		`[1e21,1e-7,123456789012345678,0.1]`, `{"z":{"y":{"b":2,"a":1},"x":[{"d":4,"c":3}]},"a":0}`,
		`"\u0000\u001f\"\\\/\b\f\n\r\t"`, `{"a":{"a":{"a":1}},"A":2}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		checkAgainstJCS(t, doc)
		checkFingerprintString(t, doc)
		checkExact(t, doc)
	})
}

// checkAgainstJCS fails t unless CanonicalJSON agrees with jcs on doc (apart from the two documented
// differences) and its output has the properties of a canonical form.
func checkAgainstJCS(t *testing.T, doc []byte) {
	canon, err := idempotent.CanonicalJSON(doc)
	old, oldErr := jcsCanonical(doc)
	switch {
	case err == nil && oldErr == nil:
		if !bytes.Equal(canon, old) {
			t.Fatalf("CanonicalJSON(%q) = %q, jcs gave %q", doc, canon, old)
		}
	case err != nil && oldErr == nil:
		// The one refusal jcs did not make: escapes of unpaired surrogates, which it read as U+FFFD.
		if !strings.Contains(err.Error(), "unpaired surrogate") {
			t.Fatalf("CanonicalJSON(%q) refused (%v), jcs accepted it as %q", doc, err, old)
		}
	case err == nil && oldErr != nil:
		// The one document jcs refused and we accept: a top-level scalar with whitespace around it.
		trimmed := bytes.Trim(doc, " \t\r\n")
		if old, oldErr := jcsCanonical(trimmed); oldErr != nil || !bytes.Equal(canon, old) || trimmed[0] == '{' ||
			trimmed[0] == '[' || trimmed[0] == '"' {
			t.Fatalf("CanonicalJSON(%q) = %q, jcs refused it (%v)", doc, canon, oldErr)
		}
	}
	if err != nil {
		return
	}
	if !json.Valid(canon) {
		t.Fatalf("canonical form is not JSON: %q", canon)
	}
	again, err := idempotent.CanonicalJSON(canon)
	if err != nil || !bytes.Equal(again, canon) {
		t.Fatalf("not idempotent: %q -> %q (%v)", canon, again, err)
	}
	if idempotent.LegacyFingerprint("POST", "/r", doc) != idempotent.LegacyFingerprint("POST", "/r", canon) {
		t.Fatalf("version 1 fingerprint differs between %q and its canonical form", doc)
	}
}

// checkExact fails t unless the exact form of doc (version 2's) has the properties of a canonical form: it is
// JSON, it is its own exact form, it fingerprints like doc, and it refuses only what CanonicalJSON refuses, plus
// case-folded duplicate names, minus numbers out of a double's range.
func checkExact(t *testing.T, doc []byte) {
	exact, err := idempotent.ExactJSON(doc)
	if err != nil {
		if _, cerr := idempotent.CanonicalJSON(doc); cerr == nil && !strings.Contains(err.Error(), "case folding") {
			t.Fatalf("ExactJSON(%q) refused (%v), CanonicalJSON accepted it", doc, err)
		}
		return
	}
	if !json.Valid(exact) {
		t.Fatalf("exact form is not JSON: %q", exact)
	}
	again, err := idempotent.ExactJSON(exact)
	if err != nil || !bytes.Equal(again, exact) {
		t.Fatalf("exact form not idempotent: %q -> %q (%v)", exact, again, err)
	}
	if idempotent.Fingerprint("POST", "/r", doc) != idempotent.Fingerprint("POST", "/r", exact) {
		t.Fatalf("fingerprint differs between %q and its exact form", doc)
	}
}

func checkFingerprintString(t *testing.T, doc []byte) {
	if a, b := idempotent.Fingerprint("POST", "/r", doc), idempotent.FingerprintString("POST", "/r", string(doc)); a != b {
		t.Fatalf("Fingerprint(%q) = %s, FingerprintString = %s", doc, a, b)
	}
	if a, b := idempotent.LegacyFingerprint("POST", "/r", doc), idempotent.LegacyFingerprintString("POST", "/r", string(doc)); a != b {
		t.Fatalf("LegacyFingerprint(%q) = %s, LegacyFingerprintString = %s", doc, a, b)
	}
}

// TestCanonicalJSONMatchesJCS compares CanonicalJSON with jcs on generated documents, which reach deeper into
// the grammar than byte-level fuzzing does in a short run: names that sort differently in UTF-16 and in code
// points, escaped and raw spellings of one name, invalid UTF-8, every number form, duplicates, whitespace.
func TestCanonicalJSONMatchesJCS(t *testing.T) {
	rng := rand.New(rand.NewPCG(8785, 1))
	names := []string{"a", "b", "A", "aa", "ab", "", "1", "é", `\u00e9`, "€", `\u20ac`, "😀", `\ud83d\ude00`, "\ufb33",
		`\ufb33`, "\uffff", "\U00010000", `\n`, `\u0000`, `\"`, `\\`, "\xff", "\xc3", "z\x80", "ö", "\u0080", `\/`}
	numbers := []string{"0", "-0", "1", "-1", "0.5", "1e2", "1E-2", "1.0", "-0.0", "123456789012345", "1234567890123456",
		"12345678901234567890", "1e21", "1e-7", "0.000001", "0.0000001", "5e-324", "1.7976931348623157e308", "1e400",
		"-1e-400", "9007199254740993", "0.1e1", "100e-2", "4.50", "0.2", "-10.10", "0.0000010", "0.00000123", "-0.000",
		"123456789012.345", "1234567890123.456", "100.0", "0.100000000000000", "9.999999999999999", "99999999999999.9",
		"0.30000000000000004", "0.000001000000000000", "333333333.33333329", "0.00000099999999999999999"}
	var gen func(depth int) string
	space := func() string { return []string{"", "", "", " ", "\n\t", "\r\n "}[rng.IntN(6)] }
	gen = func(depth int) string {
		k := rng.IntN(10)
		if depth > 5 {
			k = 4 + rng.IntN(6)
		}
		switch {
		case k < 2:
			var b strings.Builder
			b.WriteString("{")
			for i := range rng.IntN(6) {
				if i > 0 {
					b.WriteString(",")
				}
				b.WriteString(space() + `"` + names[rng.IntN(len(names))] + names[rng.IntN(len(names))] + `"` + space() + ":" + gen(depth+1))
			}
			return b.String() + space() + "}"
		case k < 4:
			parts := make([]string, rng.IntN(5))
			for i := range parts {
				parts[i] = gen(depth + 1)
			}
			return "[" + strings.Join(parts, ",") + space() + "]"
		case k < 6:
			return space() + `"` + names[rng.IntN(len(names))] + names[rng.IntN(len(names))] + `"` + space()
		case k < 9:
			return space() + numbers[rng.IntN(len(numbers))] + space()
		default:
			return space() + []string{"true", "false", "null"}[rng.IntN(3)] + space()
		}
	}
	accepted := 0
	for range 20000 {
		doc := []byte(gen(0))
		checkAgainstJCS(t, doc)
		checkFingerprintString(t, doc)
		checkExact(t, doc)
		if _, err := idempotent.CanonicalJSON(doc); err == nil {
			accepted++
		}
	}
	assert.Greater(t, accepted, 5000, "most generated documents should be accepted, or the comparison says little")
}

// FuzzCanonicalNumber compares the canonical spelling of any double, written several ways (shortest, fixed,
// rounded, exponent), with jcs's.
func FuzzCanonicalNumber(f *testing.F) {
	for _, seed := range []uint64{0, 1 << 63, 1, 0x7fefffffffffffff, 0x444b1ae4d6e2ef50, 0x3eb0c6f7a0b5ed8c, 0x3ff0000000000000,
		0x3fc999999999999a, 0x3eb0c6f7a0b5ed8d, 0x42d6bcc41e90000} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, bits uint64) {
		v := math.Float64frombits(bits)
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return
		}
		for _, spelling := range []string{
			strconv.FormatFloat(v, 'g', -1, 64), strconv.FormatFloat(v, 'e', -1, 64), strconv.FormatFloat(v, 'E', 25, 64),
			strconv.FormatFloat(v, 'f', -1, 64), strconv.FormatFloat(v, 'f', 6, 64), strconv.FormatFloat(v, 'f', 20, 64),
			strconv.FormatFloat(v, 'g', 15, 64),
		} {
			want, err := jcsCanonical([]byte(spelling))
			if err != nil {
				continue
			}
			got, err := idempotent.CanonicalJSON([]byte(spelling))
			if err != nil || string(got) != string(want) {
				t.Fatalf("CanonicalJSON(%s) = %q, %v; jcs gives %q", spelling, got, err, want)
			}
		}
	})
}
