package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// paymentBody is a valid POST /payments body (CONTRACT §3) in compact form with keys in the documented order.
func paymentBody(amount int, card, description string) string {
	return fmt.Sprintf(`{"amount":%d,"currency":"usd","card_number":%q,"cvv":%q,"expiry_month":"07","expiry_year":"2030","description":%q}`,
		amount, card, cvvHTTP, description)
}

// reordered is the same JSON as paymentBody with other key order and whitespace: the same fingerprint.
func reordered(amount int, card, description string) string {
	return fmt.Sprintf("{\n  \"description\" : %q,\n\t\"expiry_year\": \"2030\", \"expiry_month\":\"07\",\n  \"cvv\": %q,   \"card_number\": %q,\r\n  \"currency\": \"usd\", \"amount\": %d\n}\n",
		description, cvvHTTP, card, amount)
}

var paymentIDPattern = regexp.MustCompile(`^pay_[a-z2-7]+$`)

// assertProblem checks an RFC 9457 problem+json answer of the given status.
func assertProblem(t *testing.T, r response, status int) map[string]any {
	t.Helper()
	assert.Equal(t, status, r.Status, "status; body %s", r.Body)
	assert.Equal(t, "application/problem+json", r.Header.Get("Content-Type"))
	var p map[string]any
	require.NoError(t, json.Unmarshal(r.Body, &p), "problem body %s", r.Body)
	for _, f := range []string{"type", "title", "detail"} {
		v, ok := p[f].(string)
		assert.True(t, ok && v != "", "problem member %q must be a non-empty string: %s", f, r.Body)
	}
	assert.EqualValues(t, status, p["status"], "problem member status")
	return p
}

// assertCreated checks a 201 of POST /payments made first with its key and returns the payment id.
func assertCreated(t *testing.T, r response, amount int, description string) string {
	t.Helper()
	require.Equal(t, http.StatusCreated, r.Status, "body %s", r.Body)
	assert.Equal(t, "false", r.Header.Get("Idempotent-Replayed"))
	assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
	var p struct {
		ID string `json:"id"`
	}
	require.NoError(t, json.Unmarshal(r.Body, &p))
	assert.Regexp(t, paymentIDPattern, p.ID)
	assert.Equal(t, "/payments/"+p.ID, r.Header.Get("Location"))
	var got map[string]any
	require.NoError(t, json.Unmarshal(r.Body, &got))
	assert.NotEmpty(t, got["created_at"])
	delete(got, "created_at")
	want := map[string]any{"id": p.ID, "amount": float64(amount), "currency": "usd", "status": "succeeded",
		"card": map[string]any{"brand": "visa", "last4": "4242"}, "description": description}
	assert.Equal(t, want, got)
	assertNoCardData(t, r)
	return p.ID
}

func assertNoCardData(t *testing.T, r response) {
	t.Helper()
	for _, s := range []string{cardVisa, cardDeclined, `"` + cvvHTTP + `"`} {
		assert.NotContains(t, string(r.Body), s, "a response never returns the card number or CVV")
	}
}

// assertReplay checks that r is first, recorded, replayed byte for byte with Idempotent-Replayed: true.
func assertReplay(t *testing.T, first, r response) {
	t.Helper()
	assert.Equal(t, first.Status, r.Status)
	for _, h := range []string{"Content-Type", "Location", "Retry-After"} {
		assert.Equal(t, first.Header.Values(h), r.Header.Values(h), "header %s", h)
	}
	assert.Equal(t, string(first.Body), string(r.Body), "byte-identical body")
	assert.Equal(t, "true", r.Header.Get("Idempotent-Replayed"))
}

// TestPaymentsIdempotency walks CONTRACT §1 row by row on POST /payments over real HTTP.
//
// Rows not provoked here, because they need a slow, crashing or failing dependency that a black-box HTTP test
// of the shipped service cannot arrange; they are covered by the idempotent and idempotent/apigw tests:
//   - "same key while the first is still running" -> the example service waits for the answer
//     (TestConcurrentDuplicates: every duplicate of a burst gets the 201); the 409 + Retry-After past the wait's
//     bound needs a first request slower than the bound (TestCrashRecovery's held completion shows it);
//   - "first invocation crashed or timed out; its lease has ended" -> runs again;
//   - "the idempotency store fails before the claim" -> 503 + Retry-After.
func TestPaymentsIdempotency(t *testing.T) {
	tests := []struct {
		row string
		run func(t *testing.T)
	}{
		{"first request with a new key", func(t *testing.T) {
			r := request(t, http.MethodPost, "/payments", withKey(newKey(t)), paymentBody(2000, cardVisa, "first"))
			assertCreated(t, r, 2000, "first")
		}},
		{"same key, same fingerprint, first one completed", func(t *testing.T) {
			key := newKey(t)
			first := request(t, http.MethodPost, "/payments", withKey(key), paymentBody(2100, cardVisa, "replay"))
			assertCreated(t, first, 2100, "replay")
			for name, body := range map[string]string{
				"same bytes":                     paymentBody(2100, cardVisa, "replay"),
				"other key order and whitespace": reordered(2100, cardVisa, "replay"),
			} {
				t.Run(name, func(t *testing.T) {
					assertReplay(t, first, request(t, http.MethodPost, "/payments", withKey(key), body))
				})
			}
			t.Run("header name in lower case", func(t *testing.T) {
				h := http.Header{"idempotency-key": {key}} // sent verbatim, not canonicalised
				assertReplay(t, first, request(t, http.MethodPost, "/payments", h, paymentBody(2100, cardVisa, "replay")))
			})
		}},
		{"same key, different fingerprint", func(t *testing.T) {
			key := newKey(t)
			first := request(t, http.MethodPost, "/payments", withKey(key), paymentBody(2200, cardVisa, "mismatch"))
			id := assertCreated(t, first, 2200, "mismatch")
			r := request(t, http.MethodPost, "/payments", withKey(key), paymentBody(5000, cardVisa, "mismatch"))
			assertProblem(t, r, http.StatusUnprocessableEntity)
			assert.NotContains(t, string(r.Body), id, "the recorded response is not revealed")
			assert.NotContains(t, string(r.Body), "pay_")
			assert.Empty(t, r.Header.Get("Location"))
			assert.NotEqual(t, "true", r.Header.Get("Idempotent-Replayed"))
			// The record is intact: the original request still replays.
			assertReplay(t, first, request(t, http.MethodPost, "/payments", withKey(key), paymentBody(2200, cardVisa, "mismatch")))
		}},
		{"same key, a number the handler reads differently (2e3 after 2000)", func(t *testing.T) {
			// The handler's typed amount refuses 2e3 (400 on a fresh key), so replaying 2000's 201 to it would
			// answer a request the service never accepted.
			key := newKey(t)
			first := request(t, http.MethodPost, "/payments", withKey(key), paymentBody(2000, cardVisa, "spelling"))
			assertCreated(t, first, 2000, "spelling")
			exponent := strings.Replace(paymentBody(2000, cardVisa, "spelling"), `"amount":2000`, `"amount":2e3`, 1)
			require.Contains(t, exponent, `"amount":2e3`)
			assertProblem(t, request(t, http.MethodPost, "/payments", withKey(key), exponent), http.StatusUnprocessableEntity)
			assertProblem(t, request(t, http.MethodPost, "/payments", withKey(newKey(t)), exponent), http.StatusBadRequest)
			assertReplay(t, first, request(t, http.MethodPost, "/payments", withKey(key), paymentBody(2000, cardVisa, "spelling")))
		}},
		{"same key in another scope (route) is another record", func(t *testing.T) {
			key := newKey(t)
			assertCreated(t, request(t, http.MethodPost, "/payments", withKey(key), paymentBody(2300, cardVisa, "scope")), 2300, "scope")
			r := request(t, http.MethodPost, "/users", withKey(key), userBody("Scope", uniqueEmail(t)))
			assert.Equal(t, http.StatusCreated, r.Status, "POST /users with a key used on POST /payments: %s", r.Body)
		}},
		// "same key while the first is still running" (409): see the comment above.
		// "first invocation crashed or timed out; its lease has ended": see the comment above.
		{"key required on the route but absent", func(t *testing.T) {
			r := request(t, http.MethodPost, "/payments", nil, paymentBody(2000, cardVisa, "nokey"))
			assertProblem(t, r, http.StatusBadRequest)
			assert.Empty(t, r.Header.Get("Location"))
		}},
		{"key malformed", func(t *testing.T) {
			for name, h := range map[string]http.Header{
				"empty":                  {"Idempotency-Key": {""}},
				"256 characters":         {"Idempotency-Key": {strings.Repeat("k", 256)}},
				"non-ASCII":              {"Idempotency-Key": {"clé-" + newKey(t)}},
				"space inside":           {"Idempotency-Key": {"two words " + newKey(t)}},
				"two header values":      {"Idempotency-Key": {newKey(t), newKey(t)}},
				"two header lines, same": func() http.Header { k := newKey(t); return http.Header{"Idempotency-Key": {k, k}} }(),
			} {
				t.Run(name, func(t *testing.T) {
					r := request(t, http.MethodPost, "/payments", h, paymentBody(2000, cardVisa, "malformed"))
					assertProblem(t, r, http.StatusBadRequest)
					assert.Empty(t, r.Header.Get("Location"))
				})
			}
			t.Run("255 visible ASCII characters is valid", func(t *testing.T) {
				key := newKey(t)
				key = key + strings.Repeat("!~", 255)[:255-len(key)]
				r := request(t, http.MethodPost, "/payments", withKey(key), paymentBody(2000, cardVisa, "longest"))
				assertCreated(t, r, 2000, "longest")
			})
		}},
		{"declined card is recorded (402)", func(t *testing.T) {
			key := newKey(t)
			first := request(t, http.MethodPost, "/payments", withKey(key), paymentBody(2400, cardDeclined, "declined"))
			assertProblem(t, first, http.StatusPaymentRequired)
			assert.Equal(t, "false", first.Header.Get("Idempotent-Replayed"))
			assertNoCardData(t, first)
			assertReplay(t, first, request(t, http.MethodPost, "/payments", withKey(key), reordered(2400, cardDeclined, "declined")))
		}},
		{"invalid input is 400 and not recorded", func(t *testing.T) {
			key := newKey(t)
			bad := `{"amount":0,"currency":"usd","card_number":"4242424242424241","cvv":"12","expiry_month":"07","expiry_year":"2030"}`
			r := request(t, http.MethodPost, "/payments", withKey(key), bad)
			p := assertProblem(t, r, http.StatusBadRequest)
			errs, ok := p["errors"].([]any)
			require.True(t, ok, "errors must be an array: %s", r.Body)
			require.NotEmpty(t, errs)
			fields := map[string]bool{}
			for _, e := range errs {
				m, ok := e.(map[string]any)
				require.True(t, ok, "errors[] are objects: %s", r.Body)
				assert.NotEmpty(t, m["message"], "errors[].message: %s", r.Body)
				f, _ := m["field"].(string)
				fields[f] = true
			}
			for _, f := range []string{"amount", "card_number", "cvv"} {
				assert.True(t, fields[f], "errors names %q: %s", f, r.Body)
			}
			assertNoCardData(t, r)
			// Not recorded: the same key with a corrected body runs the handler.
			assertCreated(t, request(t, http.MethodPost, "/payments", withKey(key), paymentBody(2500, cardVisa, "corrected")), 2500, "corrected")
		}},
	}
	for _, tc := range tests {
		t.Run(tc.row, tc.run)
	}
}

// TestGetPayment: GET /payments/{id} gives the representation of the 201; an unknown id is 404 problem+json.
func TestGetPayment(t *testing.T) {
	created := request(t, http.MethodPost, "/payments", withKey(newKey(t)), paymentBody(3100, cardVisa, "get me"))
	id := assertCreated(t, created, 3100, "get me")

	tests := []struct {
		name   string
		path   string
		status int
	}{
		{"created payment", "/payments/" + id, http.StatusOK},
		{"unknown id", "/payments/pay_aaaaaaaaaaaaaaaaaaaaaaaaaa", http.StatusNotFound},
		{"malformed id", "/payments/not-an-id", http.StatusNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := request(t, http.MethodGet, tc.path, nil, "")
			if tc.status != http.StatusOK {
				assertProblem(t, r, tc.status)
				return
			}
			require.Equal(t, http.StatusOK, r.Status, "body %s", r.Body)
			assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
			assert.JSONEq(t, string(created.Body), string(r.Body), "same representation as the 201")
			assertNoCardData(t, r)
		})
	}
}
