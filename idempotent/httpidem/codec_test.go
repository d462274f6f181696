package httpidem

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// encodeWithJSON is the codec of earlier releases: encoding/json with HTML escaping off.
func encodeWithJSON(t testing.TB, r Response) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	require.NoError(t, enc.Encode(storedResponse{V: recordVersion, Response: r}))
	return bytes.TrimRight(buf.Bytes(), "\n")
}

// decodeWithJSON is what Decode must always agree with.
func decodeWithJSON(b []byte) (storedResponse, error) {
	var s storedResponse
	err := json.Unmarshal(b, &s)
	return s, err
}

var codecStrings = []string{"", "a", "application/json", `{"id":"pay_1","note":"a \"quoted\" word"}`, "<b>&amp;</b>",
	"line\nbreak\ttab\rreturn", "\x00\x01\x1f\x7f", "\b\f", "é€😀", "\u2028\u2029", "bad \xff\xfe utf-8 \xc3",
	`back\slash /slash`, "\ufffd", "\ud7ff\ue000\uffff", "\x80 lone continuation \x7f\x80"}

func randomResponse(rng *rand.Rand) Response {
	pick := func() string {
		var b strings.Builder
		for range rng.IntN(3) + 1 {
			b.WriteString(codecStrings[rng.IntN(len(codecStrings))])
		}
		return b.String()
	}
	r := Response{StatusCode: []int{200, 201, 204, 303, 404, 409, 0, -1, 599}[rng.IntN(9)], IsBase64Encoded: rng.IntN(2) == 0}
	if rng.IntN(4) > 0 {
		r.Headers = map[string]string{}
		for range rng.IntN(20) {
			r.Headers[pick()] = pick()
		}
	}
	if rng.IntN(2) == 0 {
		r.MultiValueHeaders = map[string][]string{}
		for range rng.IntN(4) {
			var vals []string
			if rng.IntN(4) > 0 {
				vals = []string{}
				for range rng.IntN(3) {
					vals = append(vals, pick())
				}
			}
			r.MultiValueHeaders[pick()] = vals
		}
	}
	if rng.IntN(2) == 0 {
		r.Cookies = []string{}
		for range rng.IntN(3) {
			r.Cookies = append(r.Cookies, pick())
		}
	}
	if rng.IntN(4) > 0 {
		r.Body = pick()
	}
	return r
}

// TestResponseCodecMatchesEncodingJSON checks that records are written exactly as encoding/json wrote them and
// read exactly as json.Unmarshal reads them.
func TestResponseCodecMatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 3000 {
		r := randomResponse(rng)
		got, err := responseCodec{}.Encode(r)
		require.NoError(t, err)
		want := encodeWithJSON(t, r)
		require.Equal(t, string(want), string(got), "case %d: %#v", i, r)

		decoded, err := responseCodec{}.Decode(got)
		require.NoError(t, err)
		viaJSON, err := decodeWithJSON(got)
		require.NoError(t, err)
		require.Equal(t, viaJSON.Response, decoded, "case %d", i)
		_, fast := decodeStored(got)
		assert.True(t, fast, "the fast path reads every record Encode writes")
	}
}

func TestResponseCodecOtherSpellings(t *testing.T) {
	for _, tc := range []struct {
		name, in string
	}{
		{"Whitespace", `{ "v": 1, "statusCode": 201, "headers": null, "multiValueHeaders": null, "cookies": null, "body": "", "isBase64Encoded": false }`},
		{"OtherOrder", `{"statusCode":201,"v":1,"body":"x"}`},
		{"CaseInsensitiveNames", `{"V":1,"STATUSCODE":201}`},
		{"UnpairedSurrogate", `{"v":1,"statusCode":201,"headers":null,"multiValueHeaders":null,"cookies":null,"body":"\ud800x","isBase64Encoded":false}`},
		{"RawInvalidUTF8", "{\"v\":1,\"statusCode\":201,\"headers\":null,\"multiValueHeaders\":null,\"cookies\":null,\"body\":\"\xff\",\"isBase64Encoded\":false}"},
		{"DuplicateHeader", `{"v":1,"statusCode":201,"headers":{"A":"1","A":"2"},"multiValueHeaders":{"B":null},"cookies":[],"body":"\/\u00e9\ud83d\ude00","isBase64Encoded":true}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := responseCodec{}.Decode([]byte(tc.in))
			require.NoError(t, err)
			want, err := decodeWithJSON([]byte(tc.in))
			require.NoError(t, err)
			assert.Equal(t, want.Response, got)
		})
	}
	_, err := responseCodec{}.Decode([]byte(`{"v":2,"statusCode":201}`))
	require.ErrorContains(t, err, "format version 2")
	_, err = responseCodec{}.Decode([]byte(`{"v":1,"statusCode":2.5}`))
	require.Error(t, err)
}

// FuzzResponseCodecDecode checks that whatever the fast path reads, json.Unmarshal reads the same way.
func FuzzResponseCodecDecode(f *testing.F) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 20 {
		b, _ := responseCodec{}.Encode(randomResponse(rng))
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, ok := decodeStored(b)
		if !ok {
			return
		}
		want, err := decodeWithJSON(b)
		if err != nil || want.V != recordVersion {
			t.Fatalf("fast path read %q, json.Unmarshal refused it: %v", b, err)
		}
		if !assert.ObjectsAreEqual(want.Response, fast) {
			t.Fatalf("fast path read %q as %#v, json.Unmarshal as %#v", b, fast, want.Response)
		}
	})
}

// BenchmarkCodec encodes and decodes the recorded form of a rich response (headers, multi-value headers, cookies,
// a base64 body): what every first request and every replay from the store pays.
func BenchmarkCodec(b *testing.B) {
	raw, err := os.ReadFile("testdata/response-rich.json")
	if err != nil {
		b.Fatal(err)
	}
	var r Response
	if err := json.Unmarshal(raw, &r); err != nil {
		b.Fatal(err)
	}
	enc, _ := responseCodec{}.Encode(r)
	b.Run("Encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := (responseCodec{}).Encode(r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := (responseCodec{}).Decode(enc); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestFastPathBounds pins what the fast path reads itself and what it leaves to json.Unmarshal: a mistake on
// either side is invisible in Decode's result (the slow path answers alike) but not in decodeStored's.
func TestFastPathBounds(t *testing.T) {
	stored := func(status string) []byte {
		return []byte(`{"v":1,"statusCode":` + status + `,"headers":null,"multiValueHeaders":null,"cookies":null,"body":"","isBase64Encoded":false}`)
	}
	for _, tc := range []struct {
		status string
		want   int
		ok     bool
	}{
		{"0", 0, true},
		{"7", 7, true},
		{"201", 201, true},
		{"-1", -1, true},
		{"123456789012345678", 123456789012345678, true}, // 18 digits
		{"1234567890123456789", 0, false},                // 19: json.Unmarshal's to judge
		{"01", 0, false},
		{"-01", 0, false},
		{"-", 0, false},
		{"", 0, false},
		{"2.5", 0, false},
	} {
		r, ok := decodeStored(stored(tc.status))
		assert.Equal(t, tc.ok, ok, tc.status)
		if ok {
			assert.Equal(t, tc.want, r.StatusCode, tc.status)
		}
	}
	// Input that ends inside a value is refused, never read past its end.
	for _, in := range []string{`{"v":1,"statusCode":`, `{"v":1,"statusCode":-`, `{"v":1,"statusCode":201`,
		`{"v":1,"statusCode":201,"headers":null,"multiValueHeaders":null,"cookies":null,"body":"","isBase64Encoded":`,
		`{"v":1,"statusCode":201,"headers":null,"multiValueHeaders":null,"cookies":null,"body":"","isBase64Encoded":tru}`} {
		assert.NotPanics(t, func() {
			_, ok := decodeStored([]byte(in))
			assert.False(t, ok, in)
		}, in)
	}

	d := reader{b: []byte("abc"), ok: true}
	d.expect("abd")
	assert.False(t, d.ok, "a literal that does not match stops the reader")
	assert.Zero(t, d.i)
	d = reader{b: []byte("-01"), ok: true}
	assert.Zero(t, d.int(), "a refused number reads as nothing")
	assert.False(t, d.ok)
	assert.Zero(t, d.i, "and the reader stays where the number began")
	d = reader{b: []byte("12"), ok: false}
	assert.Zero(t, d.int(), "a stopped reader reads nothing")
	assert.Zero(t, d.i)
	d = reader{b: []byte("nope"), ok: true}
	assert.False(t, d.bool())
	assert.False(t, d.ok, "neither true nor false stops the reader")
	d = reader{b: []byte("false}"), ok: true}
	assert.False(t, d.bool())
	assert.True(t, d.ok)
	assert.Equal(t, 5, d.i)
}

// TestFastPathStrings reads strings with the fast path's reader directly: what it accepts, what it leaves to
// json.Unmarshal (ok false), and where it stops.
func TestFastPathStrings(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		ok   bool
	}{
		{`"abc"x`, "abc", true},
		{`""`, "", true},
		{`"a\nb"`, "a\nb", true},
		{`"é€"`, "é€", true},
		{`"\/\b\f\r\t\"\\"`, "/\b\f\r\t\"\\", true},
		{`"\u00e9\u00E9\ud83d\ude00\uD83D\uDE00"`, "éé😀😀", true},
		{`"\u0000\ud7ff\ue000\udbff\udfff"`, "\x00\ud7ff\ue000\U0010ffff", true},
		{`"\u00aA\u00Ff\u0a9F"`, "\u00aa\u00ff\u0a9f", true}, // the ends of each hex digit range
		{`"a\nb` + "é" + `c"`, "a\nbéc", true},
		{"\"\xff\"", "", false},
		{"\"a\\n\xff\"", "", false},
		{"\"a\x01\"", "", false},
		{"\"a\\n\x01\"", "", false},
		{`"abc`, "", false},
		{`"a\nbc`, "", false},
		{`"a\n`, "", false},
		{`"\`, "", false},
		{`"\x"`, "", false},
		{`"\ud800x"`, "", false},
		{`"\udc00"`, "", false},
		{`"\ud800\u0041"`, "", false},
		{`"\udbff\ue000"`, "", false},
		{`"\u12"`, "", false},
		{`"\u00g0"`, "", false},
		{`"\u00G0"`, "", false},
		{`"\u00/0"`, "", false},
		{`"\u00:0"`, "", false},
		{`"\u00@0"`, "", false},
		{"\"\\u00`0\"", "", false},
		{`"\ud800\udc00\udbff\udfff"`, "\U00010000\U0010ffff", true},
		{`"\udc00\udc00"`, "", false},
		{`"\u0041\udc00"`, "", false},
		{"\"\x80\"", "", false},
		{`x"a"`, "", false},
	} {
		b := []byte(tc.in)
		d := reader{b: b[:len(b):len(b)], ok: true} // no capacity past the input to read by mistake
		got := d.string()
		assert.Equal(t, tc.ok, d.ok, "%q", tc.in)
		if tc.in[0] != '"' {
			assert.Zero(t, d.i, "%q: a reader stopped at the quote reads no further", tc.in)
		}
		if tc.ok {
			assert.Equal(t, tc.want, got, "%q", tc.in)
			assert.Equal(t, strings.LastIndex(tc.in, `"`)+1, d.i, "%q: stops after the closing quote", tc.in)
		}
	}
}

// TestEncodeManySmallParts encodes responses whose parts are many and small, where a size estimate that went wrong
// would be negative.
func TestEncodeManySmallParts(t *testing.T) {
	cookies := Response{StatusCode: 200, Cookies: make([]string, 12)}
	headers := Response{StatusCode: 200, Headers: map[string]string{}}
	for i := range 40 {
		headers.Headers[string(rune('A'+i%26))+strings.Repeat("x", i/26)] = ""
	}
	for _, r := range []Response{cookies, headers} {
		got, err := responseCodec{}.Encode(r)
		require.NoError(t, err)
		assert.Equal(t, string(encodeWithJSON(t, r)), string(got))
	}
}
