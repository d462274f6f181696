package idempotent_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/idempotent"
)

func TestValidateKey(t *testing.T) {
	for _, tc := range []struct {
		name, key, reason string
	}{
		{"UUID", "8e03978e-40d5-43e8-bc93-6894a57f9324", ""},
		{"AllVisibleASCII", "!~azAZ09\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}", ""},
		{"MaxLength", strings.Repeat("k", 255), ""},
		{"Empty", "", "empty"},
		{"TooLong", strings.Repeat("k", 256), "longer than 255 characters"},
		{"Space", "a b", "position 2"},
		{"Tab", "a\tb", "position 2"},
		{"CRLF", "a\r\nInjected: 1", "position 2"},
		{"DEL", "a\x7f", "position 2"},
		{"NonASCII", "clé", "position 3"},
		{"NUL", "\x00", "position 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := idempotent.ValidateKey(tc.key)
			if tc.reason == "" {
				require.NoError(t, err)
				return
			}
			var ke *idempotent.KeyError
			require.ErrorAs(t, err, &ke)
			require.ErrorIs(t, err, idempotent.ErrInvalidKey)
			assert.Contains(t, ke.Reason, tc.reason)
		})
	}
}

func TestFingerprint(t *testing.T) {
	base := idempotent.Fingerprint("POST", "/payments", []byte(`{"amount":2000,"currency":"usd","meta":{"a":1,"b":[1,2]}}`))
	for _, tc := range []struct {
		name          string
		method, route string
		body          string
		same          bool
	}{
		{"KeyOrder", "POST", "/payments", `{"meta":{"b":[1,2],"a":1},"currency":"usd","amount":2000}`, true},
		{"Whitespace", "POST", "/payments", "{\n  \"amount\": 2000,\n  \"currency\": \"usd\",\n  \"meta\": {\"a\": 1, \"b\": [1, 2]}\n}\n", true},
		// A typed int field refuses 2e3 and 1.0 where it accepts 2000 and 1: the spellings differ in meaning.
		{"NumberSpelling", "POST", "/payments", `{"amount":2e3,"currency":"usd","meta":{"a":1.0,"b":[1,2]}}`, false},
		{"UnicodeEscape", "POST", "/payments", `{"amount":2000,"currency":"\u0075sd","meta":{"a":1,"b":[1,2]}}`, true},
		{"OtherValue", "POST", "/payments", `{"amount":2001,"currency":"usd","meta":{"a":1,"b":[1,2]}}`, false},
		{"ArrayOrderMatters", "POST", "/payments", `{"amount":2000,"currency":"usd","meta":{"a":1,"b":[2,1]}}`, false},
		{"OtherMethod", "PUT", "/payments", `{"amount":2000,"currency":"usd","meta":{"a":1,"b":[1,2]}}`, false},
		{"OtherRoute", "POST", "/refunds", `{"amount":2000,"currency":"usd","meta":{"a":1,"b":[1,2]}}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := idempotent.Fingerprint(tc.method, tc.route, []byte(tc.body))
			assert.Len(t, got, 46)
			assert.True(t, strings.HasPrefix(got, idempotent.FingerprintVersion))
			assert.Equal(t, tc.same, got == base)
		})
	}
	t.Run("NonJSONHashedRaw", func(t *testing.T) {
		a := idempotent.Fingerprint("POST", "/upload", []byte("a=1&b=2"))
		assert.NotEqual(t, a, idempotent.Fingerprint("POST", "/upload", []byte("b=2&a=1")))
		assert.Equal(t, a, idempotent.Fingerprint("POST", "/upload", []byte("a=1&b=2")))
	})
	t.Run("FieldsDoNotBleed", func(t *testing.T) {
		assert.NotEqual(t, idempotent.Fingerprint("POST", "/a", []byte("b")), idempotent.Fingerprint("POST", "/ab", nil))
	})
}

func TestScopeID(t *testing.T) {
	s := idempotent.Scope{Principal: "alice", Method: "POST", Route: "/payments"}
	id := s.ID("key-1")
	assert.Len(t, id, 64)
	assert.NotContains(t, id, "key-1")
	assert.Equal(t, id, s.ID("key-1"), "stable")
	for name, other := range map[string]string{
		"OtherPrincipal": idempotent.Scope{Principal: "bob", Method: "POST", Route: "/payments"}.ID("key-1"),
		"OtherMethod":    idempotent.Scope{Principal: "alice", Method: "PUT", Route: "/payments"}.ID("key-1"),
		"OtherRoute":     idempotent.Scope{Principal: "alice", Method: "POST", Route: "/users"}.ID("key-1"),
		"OtherKey":       s.ID("key-2"),
		"ShiftedBytes":   idempotent.Scope{Principal: "alic", Method: "ePOST", Route: "/payments"}.ID("key-1"),
	} {
		assert.NotEqual(t, id, other, name)
	}
}

func TestSelectFields(t *testing.T) {
	got, err := idempotent.SelectFields([]byte(`{"amount":2000,"meta":{"trace":"x","order":"o1"},"ts":"now"}`), []string{"amount", "meta.order", "missing"})
	require.NoError(t, err)
	assert.JSONEq(t, `{"amount":2000,"meta.order":"o1","missing":null}`, string(got))
	_, err = idempotent.SelectFields([]byte(`not json`), []string{"a"})
	require.Error(t, err)
}

func TestJSONField(t *testing.T) {
	doc := []byte(`{"idempotencyKey":"abc","n":12,"nested":{"k":"v"},"empty":"","obj":{},"arr":[],"b":true,"nul":null}`)
	for _, tc := range []struct {
		path, want string
		found      bool
		reason     string
	}{
		{"idempotencyKey", "abc", true, ""},
		{"n", "12", true, ""},
		{"nested.k", "v", true, ""},
		{"empty", "", true, ""},
		{"missing", "", false, ""},
		{"nul", "", false, ""},
		{"idempotencyKey.x", "", false, ""},
		{"obj", "", true, "object"},
		{"arr", "", true, "array"},
		{"b", "", true, "boolean"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			got, found, err := idempotent.JSONField(doc, tc.path)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.found, found)
			if tc.reason == "" {
				require.NoError(t, err)
				return
			}
			var ke *idempotent.KeyError
			require.ErrorAs(t, err, &ke)
			assert.Contains(t, ke.Reason, tc.reason)
		})
	}
	key, found, err := idempotent.JSONField([]byte("{"), "a")
	require.Error(t, err)
	assert.False(t, found, "nothing is found in a body that is not JSON")
	assert.Empty(t, key)
	require.NotErrorIs(t, err, idempotent.ErrInvalidKey, "a body that is not JSON has no key; it is not a bad key")
}

func FuzzValidateKey(f *testing.F) {
	for _, seed := range []string{"", "k", "a b", "\x00", "clé", strings.Repeat("x", 256), "8e03978e-40d5-43e8-bc93-6894a57f9324"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, key string) {
		err := idempotent.ValidateKey(key)
		valid := len(key) >= 1 && len(key) <= 255 && strings.IndexFunc(key, func(r rune) bool { return r < 0x21 || r > 0x7e }) < 0
		if valid != (err == nil) {
			t.Fatalf("ValidateKey(%q) = %v, grammar says valid=%v", key, err, valid)
		}
	})
}
