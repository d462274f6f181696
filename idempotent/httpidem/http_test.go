package httpidem

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestMethodPolicy pins what each method does with a key under each option.
func TestMethodPolicy(t *testing.T) {
	// POST and PATCH keep requiring a key, and the safe methods keep ignoring one.
	for method, want := range map[string]methodPolicy{"POST": keyRequired, "PATCH": keyRequired, "put": keyOptional,
		"DELETE": keyOptional, "GET": passThrough, "head": passThrough, "OPTIONS": passThrough, "TRACE": passThrough} {
		assert.Equal(t, want, policyFor(method, false, false), method)
	}
	assert.Equal(t, keyRequired, policyFor("PUT", false, true))
	assert.Equal(t, keyOptional, policyFor("PUT", true, true))
	assert.Equal(t, keyOptional, policyFor("POST", true, false))
	assert.Equal(t, passThrough, policyFor("GET", false, true))
}

// TestQueryEncodings pins the query part of the fingerprint: raw query strings are kept as received (order and
// percent-encoding count); REST parameter maps are sorted by name, values in order.
func TestQueryEncodings(t *testing.T) {
	assert.Empty(t, RawQuery("", nil))
	assert.Equal(t, "raw:b=2&a=1", RawQuery("b=2&a=1", map[string]string{"a": "1", "b": "2"}))
	assert.NotEqual(t, RawQuery("a=1&b=2", nil), RawQuery("b=2&a=1", nil))
	assert.NotEqual(t, RawQuery("a=%41", nil), RawQuery("a=A", nil))
	// Without the raw string, the decoded parameters.
	assert.Equal(t, MapsQuery(nil, map[string]string{"a": "1"}), RawQuery("", map[string]string{"a": "1"}))
	assert.NotEqual(t, RawQuery("a=1", nil), RawQuery("", map[string]string{"a": "1"}))

	assert.Empty(t, MapsQuery(nil, nil))
	assert.Empty(t, MapsQuery(map[string][]string{}, map[string]string{}))
	m := MapsQuery(map[string][]string{"b": {"2"}, "a": {"1", "3"}}, map[string]string{"b": "2", "a": "3"})
	assert.Equal(t, m, MapsQuery(map[string][]string{"a": {"1", "3"}, "b": {"2"}}, map[string]string{"a": "3", "b": "2"}))
	for name, other := range map[string]string{
		"ValueOrder":   MapsQuery(map[string][]string{"b": {"2"}, "a": {"3", "1"}}, map[string]string{"b": "2", "a": "1"}),
		"SingleDiffer": MapsQuery(map[string][]string{"b": {"2"}, "a": {"1", "3"}}, map[string]string{"b": "2", "a": "1"}),
		"NoSingle":     MapsQuery(map[string][]string{"b": {"2"}, "a": {"1", "3"}}, nil),
		"Shifted":      MapsQuery(map[string][]string{"b": {"2"}, "a": {"1,3"}}, map[string]string{"b": "2", "a": "3"}),
	} {
		assert.NotEqual(t, m, other, name)
	}
}

// TestQueryAndHeaderGolden pins the encodings byte for byte: every count and length prefix is what keeps two
// different queries or header sets from encoding alike.
func TestQueryAndHeaderGolden(t *testing.T) {
	n := func(v byte) string { return "\x00\x00\x00\x00\x00\x00\x00" + string(rune(v)) }
	assert.Equal(t, "maps:"+n(1)+n(1)+"a"+n(2)+n(1)+"1"+n(1)+"2"+n(1)+n(1)+"b"+n(1)+"3",
		MapsQuery(map[string][]string{"a": {"1", "2"}}, map[string]string{"b": "3"}))
	assert.Equal(t, "maps:"+n(0)+n(1)+n(1)+"a"+n(1)+"1", MapsQuery(nil, map[string]string{"a": "1"}))
	assert.Equal(t, "maps:"+n(1)+n(1)+"a"+n(1)+n(1)+"1"+n(0), MapsQuery(map[string][]string{"a": {"1"}}, nil))
	assert.Equal(t, MapsQuery(nil, map[string]string{"a": "1"}), RawQuery("", map[string]string{"a": "1"}))
	assert.Equal(t, n(8)+"X-Tenant"+n(2)+n(1)+"a"+n(1)+"b"+n(6)+"X-None"+n(0),
		headerPart([]string{"x-tenant", "X-None"}, http.Header{"X-Tenant": {"a", "b"}}.Values))
	assert.Empty(t, headerPart(nil, http.Header{}.Values))
}
