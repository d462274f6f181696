package apigw

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/memstore"
)

// FuzzIdempotencyKey holds the key grammar of CONTRACT §1 at the HTTP level, on every adapter, for any header
// value a client or API Gateway could deliver (non-ASCII, control characters, CR/LF, more than 255 bytes, empty,
// whitespace only): a malformed key is answered 400 problem+json whose detail names the header and the reason,
// the handler does not run and nothing is stored; a well-formed one runs the handler once and replays after.
// FuzzREST/FuzzHTTP/FuzzFunctionURL check that arbitrary events get well-formed answers; this target checks that
// the answer is the right one for the key.
func FuzzIdempotencyKey(f *testing.F) {
	for i, k := range []string{
		"8e03978e-40d5-43e8-bc93-6894a57f9324", "k", "", " ", "\t", " \t ", "\r\n", "k\r\nX-Injected: 1", "k\n", "\rk",
		"clé", "日本語", "k\u00a0", "\u200bk", "\ufeffk", "\x00", "k\x7f", "\x1b[31m", "a b", "a,b", ",", " padded\t",
		strings.Repeat("k", 255), strings.Repeat("k", 256), strings.Repeat("é", 128), "%0d%0a", "\xff\xfe",
	} {
		f.Add(k, uint8(i))
	}
	kinds := frontEnds
	names := []string{"Idempotency-Key", "idempotency-key", "IDEMPOTENCY-KEY"}
	f.Fuzz(func(t *testing.T, key string, variant uint8) {
		k := kinds[int(variant)%len(kinds)]
		name := names[int(variant/3)%len(names)]
		store := memstore.New()
		e := idempotent.New(store, idempotent.WithDisabled(false), idempotent.WithLogger(slog.New(slog.DiscardHandler)))
		c := &counter{}
		h := k.wrap(e, c.handle)
		in := input{header: map[string][]string{name: {key}}}

		r, err := h(context.Background(), in)
		if err != nil {
			t.Fatalf("%s: adapter error: %v", k.name, err)
		}
		noInjection(t, k.name, r)
		reason := keyRefusal(key)
		if reason == "" {
			if r.StatusCode != http.StatusCreated || r.Headers[ReplayedHeader] != "false" || c.n.Load() != 1 || store.Len() != 1 {
				t.Fatalf("%s: well-formed key %q: status %d, replayed %q, %d runs, %d records: %s",
					k.name, key, r.StatusCode, r.Headers[ReplayedHeader], c.n.Load(), store.Len(), r.Body)
			}
			again, err := h(context.Background(), in)
			if err != nil || again.Headers[ReplayedHeader] != "true" || again.Body != r.Body || c.n.Load() != 1 {
				t.Fatalf("%s: well-formed key %q: the retry was not a replay (%v, %d runs): %s", k.name, key, err, c.n.Load(), again.Body)
			}
			return
		}
		if r.StatusCode != http.StatusBadRequest || r.Headers["Content-Type"] != ProblemContentType || r.Headers[ReplayedHeader] != "false" {
			t.Fatalf("%s: malformed key %q (%s): want a 400 problem, got %d %v: %s", k.name, key, reason, r.StatusCode, r.Headers, r.Body)
		}
		if c.n.Load() != 0 || store.Len() != 0 {
			t.Fatalf("%s: malformed key %q ran the handler (%d) or stored a record (%d)", k.name, key, c.n.Load(), store.Len())
		}
		var doc struct {
			Type, Title, Detail string
			Status              int
		}
		if err := json.Unmarshal([]byte(r.Body), &doc); err != nil {
			t.Fatalf("%s: problem is not JSON: %v: %s", k.name, err, r.Body)
		}
		if doc.Type != DefaultProblemTypeBase+"invalid-key" || doc.Title == "" || doc.Status != http.StatusBadRequest {
			t.Fatalf("%s: malformed key %q: problem %s", k.name, key, r.Body)
		}
		for _, want := range []string{"Idempotency-Key header", reason, "1 to 255 visible ASCII characters"} {
			if !strings.Contains(doc.Detail, want) {
				t.Fatalf("%s: malformed key %q: detail %q does not say %q", k.name, key, doc.Detail, want)
			}
		}
	})
}

// keyRefusal is the reason a header value is not a usable key, as the detail must give it, or "" for a usable key:
// the value trimmed of spaces and tabs is 1 to 255 visible ASCII characters and holds no comma.
func keyRefusal(v string) string {
	k := strings.Trim(v, " \t")
	switch {
	case k == "":
		return "empty"
	case strings.Contains(k, ","):
		return "comma"
	case len(k) > idempotent.MaxKeyLength:
		return fmt.Sprintf("longer than %d", idempotent.MaxKeyLength)
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return fmt.Sprintf("position %d ", i+1)
		}
	}
	return ""
}

// noInjection fails when a response header name or value holds CR or LF: whatever the key, nothing of it may
// split the response's headers.
func noInjection(t *testing.T, kind string, r response) {
	t.Helper()
	check := func(s string) {
		if strings.ContainsAny(s, "\r\n") {
			t.Fatalf("%s: response header holds CR/LF: %q", kind, s)
		}
	}
	for n, v := range r.Headers {
		check(n)
		check(v)
	}
	for n, vs := range r.MultiValueHeaders {
		check(n)
		for _, v := range vs {
			check(v)
		}
	}
}
