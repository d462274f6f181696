package user_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/mail"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/handlers/internal/httpapi"
	"github.com/idemkit/idemkit/handlers/user/user"
	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/apigw"
	"github.com/idemkit/idemkit/idempotent/memstore"
)

// Hostile input (issue #5): the fuzz targets below hold the POST /users validation and the wrapped handler to
// these rules for any body and any Idempotency-Key:
//   - nothing panics and every outcome is a response (never a Go error, never a 500);
//   - an accepted request satisfies the documented constraints: a trimmed name of 1-100 characters without control
//     characters, and a bare e-mail address, trimmed and lower-cased, of at most 254 bytes, that validates again
//     as itself (what is stored is a valid address);
//   - a rejection is a problem+json with a non-empty detail, and every field error says why;
//   - the e-mail address is never logged.

// fuzzUserBodies are the request bodies the user fuzz targets start from.
var fuzzUserBodies = []string{
	`{"name":"Alice","email":"alice@example.com"}`,
	`{"name":"  Zoë Ångström  ","email":"  Zoe.Angstrom+News@Example.COM "}`,
	`{"name":"` + strings.Repeat("é", 100) + `","email":"ü@exämple.com"}`,
	`{"name":"` + strings.Repeat("a", 101) + `","email":"a@b.co"}`,
	`{"name":"Al\nice","email":"alice@localhost"}`,
	`{"name":"Alice","email":"Alice <alice@example.com>"}`,
	`{"name":"Alice","email":"\"quoted local\"@example.com"}`,
	`{"name":"Alice","email":"alice@[192.0.2.1]"}`,
	`{"name":"Alice","email":"alice@example.com (comment)"}`,
	`{"name":"Alice","email":"a@b@example.com"}`,
	`{"name":"Alice","email":"` + strings.Repeat("a", 64) + "@" + strings.Repeat("b", 185) + `.com"}`,
	`{"name":"Alice","email":"` + strings.Repeat("Ⱥ", 120) + `@example.com"}`,
	"{\"name\":\"Caf\xe9\",\"email\":\"caf\xe9@example.com\"}",
	`{"name":"\u202eecilA","email":"alice@example.com"}`,
	`{"name":"Alice","email":"alice@example.com","admin":true}`,
	`{"name":"Alice","name":"Bob","email":"alice@example.com"}`,
	`{"name":42,"email":["a@example.com"]}`,
	`{"name":null,"email":null}`,
	`{"name":"Alice","email":"alice@example.com"`,
	`{"name":"Alice","email":"alice@example.com"}{}`,
	"\ufeff{\"name\":\"Alice\",\"email\":\"alice@example.com\"}",
	`{"name":NaN,"email":Infinity}`,
	`{"name":"` + strings.Repeat("[", 100) + `"}`,
	`{"":""}`,
	``, `[]`, `"x"`, `null`,
}

// FuzzNormalizeEmail: an address NormalizeEmail accepts is stored as it returns it, so the stored form must itself
// be a valid, normalised address within the limit.
func FuzzNormalizeEmail(f *testing.F) {
	for _, s := range []string{"alice@example.com", "  Alice@Example.COM ", "ü@exämple.com", "a@b.co", "Alice <a@b.co>",
		"a@b", "a@.b.co", "a@b..co", "a@[1.2.3.4]", `"a b"@example.com`, "a@b.co.", "@b.co", "a@", "",
		strings.Repeat("Ⱥ", 120) + "@example.com", strings.Repeat("a", 64) + "@" + strings.Repeat("b", 185) + ".com",
		"KELVIN\u212a@example.com", "İ@example.com", "caf\xe9@example.com", "a\u00a0@example.com", "a@exa\u200bmple.com"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		norm, msg := user.NormalizeEmail(s)
		if msg != "" {
			if norm != "" {
				t.Fatalf("a refused address returns %q", norm)
			}
			return
		}
		checkEmail(t, norm)
		if want := strings.ToLower(strings.TrimSpace(s)); norm != want {
			t.Fatalf("%q normalised to %q, want %q", s, norm, want)
		}
	})
}

// checkEmail holds a stored (normalised) address to the documented rules.
func checkEmail(t *testing.T, email string) {
	t.Helper()
	switch {
	case email == "" || email != strings.TrimSpace(email) || email != strings.ToLower(email):
		t.Fatalf("stored address %q is not trimmed and lower-case", email)
	case len(email) > user.MaxEmailLen:
		t.Fatalf("stored address of %d bytes is longer than %d", len(email), user.MaxEmailLen)
	case !utf8.ValidString(email) || strings.ContainsRune(email, utf8.RuneError):
		t.Fatalf("stored address %q is not clean UTF-8", email)
	}
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Name != "" || addr.Address != email {
		t.Fatalf("stored address %q is not a bare address: %v", email, err)
	}
	domain := email[strings.LastIndexByte(email, '@')+1:]
	if !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") || strings.Contains(domain, "..") {
		t.Fatalf("stored address %q has no domain name", email)
	}
	if again, msg := user.NormalizeEmail(email); msg != "" || again != email {
		t.Fatalf("stored address %q does not validate as itself: %q %q", email, again, msg)
	}
}

// checkName holds a stored name to the documented rules.
func checkName(t *testing.T, name string) {
	t.Helper()
	n := utf8.RuneCountInString(name)
	switch {
	case name != strings.TrimSpace(name):
		t.Fatalf("stored name %q is not trimmed", name)
	case n == 0 || n > user.MaxNameLen:
		t.Fatalf("stored name of %d characters is outside 1..%d", n, user.MaxNameLen)
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		t.Fatalf("stored name %q holds a control character", name)
	case !utf8.ValidString(name) || strings.ContainsRune(name, utf8.RuneError):
		t.Fatalf("stored name %q is not clean UTF-8", name)
	}
}

// FuzzParseCreateRequest fuzzes the body validation of POST /users.
func FuzzParseCreateRequest(f *testing.F) {
	for _, b := range fuzzUserBodies {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body string) {
		obj, p := httpapi.ReadObject(body, false)
		if p != nil {
			if p.Status != http.StatusBadRequest && p.Status != http.StatusRequestEntityTooLarge {
				t.Fatalf("a body is refused with 400 or 413, got %d", p.Status)
			}
			checkUserProblem(t, p.Response(), p.Status, body)
			return
		}
		req, errs := user.ParseCreateRequest(obj)
		if errs != nil {
			if req != (user.CreateRequest{}) {
				t.Fatalf("a rejected request returns data: %+v", req)
			}
			checkUserProblem(t, httpapi.Validation(errs).Response(), http.StatusBadRequest, body)
			return
		}
		checkUserAccepted(t, body, req)
	})
}

// checkUserAccepted checks an accepted request against the rules and an independent reading of the body.
func checkUserAccepted(t *testing.T, body string, req user.CreateRequest) {
	t.Helper()
	if !utf8.ValidString(body) {
		t.Fatalf("accepted a body that is not valid UTF-8: %q", body)
	}
	checkName(t, req.Name)
	checkEmail(t, req.Email)
	var raw struct {
		Name  string `json:"name"`
		Email string `json:"email"`
	}
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		t.Fatalf("accepted a body encoding/json refuses: %v", err)
	}
	if req.Name != strings.TrimSpace(raw.Name) || req.Email != strings.ToLower(strings.TrimSpace(raw.Email)) {
		t.Fatalf("read %+v from %q", req, body)
	}
}

// checkUserProblem checks an RFC 9457 response; 400 validation problems list fields with messages.
func checkUserProblem(t *testing.T, resp events.APIGatewayProxyResponse, status int, body string) map[string]any {
	t.Helper()
	if resp.StatusCode != status || resp.Headers["Content-Type"] != httpapi.ContentTypeProblem {
		t.Fatalf("want a %d problem, got %d %q: %s", status, resp.StatusCode, resp.Headers["Content-Type"], resp.Body)
	}
	var p map[string]any
	if err := json.Unmarshal([]byte(resp.Body), &p); err != nil {
		t.Fatalf("problem is not JSON: %v: %s", err, resp.Body)
	}
	for _, m := range []string{"type", "title", "detail"} {
		if s, _ := p[m].(string); strings.TrimSpace(s) == "" {
			t.Fatalf("problem member %q is empty: %s", m, resp.Body)
		}
	}
	if p["status"] != float64(status) {
		t.Fatalf("problem status %v, want %d", p["status"], status)
	}
	if errs, ok := p["errors"].([]any); ok {
		for _, e := range errs {
			m, _ := e.(map[string]any)
			field, _ := m["field"].(string)
			msg, _ := m["message"].(string)
			// A member named "" is reported as the unknown field "" (httpapi.Object.Unknown).
			if strings.TrimSpace(msg) == "" || (field == "" && !strings.Contains(body, `""`) && !strings.Contains(body, `"\u`)) {
				t.Fatalf("field error without field or message: %s", resp.Body)
			}
		}
	}
	return p
}

// FuzzCreateUser fuzzes POST /users in process: the service behind apigw.REST (key optional) on memstore and the
// in-memory users table, with an arbitrary body and an Idempotency-Key that may be absent. Each request is sent
// twice: with a key the second is a replay; without one it must not register the address a second time.
func FuzzCreateUser(f *testing.F) {
	keys := []string{"key-1", "", " ", "\t", "k\r\nX-Injected: 1", "clé", "\x00", "a,b", strings.Repeat("k", 256)}
	for i, b := range fuzzUserBodies {
		f.Add(b, keys[i%len(keys)], i%3 != 0)
	}
	f.Fuzz(func(t *testing.T, body, key string, sendKey bool) {
		tb := newTable(t)
		var logs bytes.Buffer
		logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		svc := user.New(tb.db(), tb.name, func(o *user.Options) {
			o.Now = func() time.Time { return testNow }
			o.Logger = logger
			o.ScopeID = func(ctx context.Context) (string, bool) {
				inv, ok := idempotent.FromContext(ctx)
				return inv.ID, ok
			}
		})
		store := memstore.New()
		h := apigw.REST(idempotent.New(store, idempotent.WithDisabled(false), idempotent.WithLogger(logger)), svc.Handle,
			apigw.WithKeyOptional())

		ev := loadEvent(t, "testdata/create.json")
		ev.Body = body
		if sendKey {
			ev.Headers["Idempotency-Key"] = key
			ev.MultiValueHeaders["Idempotency-Key"] = []string{key}
		}
		first, err := h(context.Background(), ev)
		if err != nil {
			t.Fatalf("the wrapped handler returned an error: %v", err)
		}
		if first.Headers[apigw.ReplayedHeader] != "false" {
			t.Fatalf("first request: %s %q", apigw.ReplayedHeader, first.Headers[apigw.ReplayedHeader])
		}
		trimmed := strings.Trim(key, " \t")
		if sendKey && (trimmed == "" || strings.Contains(trimmed, ",") || idempotent.ValidateKey(trimmed) != nil) {
			p := checkUserProblem(t, first, http.StatusBadRequest, body)
			if !strings.HasSuffix(p["type"].(string), "#invalid-key") {
				t.Fatalf("a malformed key gets the invalid-key problem: %s", first.Body)
			}
			if len(tb.txs) != 0 || store.Len() != 0 {
				t.Fatal("a malformed key ran the handler or stored something")
			}
			return
		}

		obj, p := httpapi.ReadObject(body, false)
		var req user.CreateRequest
		var errs []httpapi.FieldError
		if p == nil {
			req, errs = user.ParseCreateRequest(obj)
		}
		switch {
		case p != nil:
			checkUserProblem(t, first, p.Status, body)
		case errs != nil:
			checkUserProblem(t, first, http.StatusBadRequest, body)
		default:
			var id string
			if sendKey {
				id = user.UserID(idempotent.Scope{Principal: "anonymous", Method: http.MethodPost, Route: user.ResourceUsers}.ID(trimmed))
			}
			checkUserCreated(t, first, body, req, id, tb)
		}
		if first.StatusCode != http.StatusCreated && len(tb.txs) != 0 {
			t.Fatalf("a %d wrote to the table", first.StatusCode)
		}

		second, err := h(context.Background(), ev)
		if err != nil {
			t.Fatalf("the wrapped handler returned an error on the retry: %v", err)
		}
		switch {
		case sendKey && apigw.DefaultRecordStatus(first.StatusCode):
			if second.Headers[apigw.ReplayedHeader] != "true" || second.StatusCode != first.StatusCode || second.Body != first.Body {
				t.Fatalf("a recorded %d was not replayed: %d %s", first.StatusCode, second.StatusCode, second.Body)
			}
		case first.StatusCode == http.StatusCreated:
			// No key: the address is taken now, by the first user.
			checkUserProblem(t, second, http.StatusConflict, body)
		default:
			if second.StatusCode != first.StatusCode || second.Body != first.Body {
				t.Fatalf("the retry answered %d %s, the first %d %s", second.StatusCode, second.Body, first.StatusCode, first.Body)
			}
		}
		if first.StatusCode == http.StatusCreated && strings.Contains(logs.String(), req.Email) {
			t.Fatalf("the e-mail address was logged: %s", logs.String())
		}
	})
}

// checkUserCreated checks a 201 and the registration transaction behind it. id is the expected user ID, "" for
// a random one.
func checkUserCreated(t *testing.T, resp events.APIGatewayProxyResponse, body string, req user.CreateRequest, id string, tb *table) {
	t.Helper()
	checkUserAccepted(t, body, req)
	var got user.User
	dec := json.NewDecoder(strings.NewReader(resp.Body))
	dec.DisallowUnknownFields()
	if resp.StatusCode != http.StatusCreated || dec.Decode(&got) != nil {
		t.Fatalf("want 201 with a user, got %d %s", resp.StatusCode, resp.Body)
	}
	if id == "" {
		id = got.ID
	}
	want := user.User{ID: id, Name: req.Name, Email: req.Email, CreatedAt: testNow.Format(time.RFC3339)}
	if got != want || !user.ValidUserID(got.ID) || resp.Headers["Location"] != "/users/"+got.ID {
		t.Fatalf("201 %+v (Location %q), want %+v", got, resp.Headers["Location"], want)
	}
	if len(tb.txs) != 1 || len(tb.txs[0].TransactItems) != 2 {
		t.Fatalf("want one transaction of two puts, got %d", len(tb.txs))
	}
	items := tb.txs[0].TransactItems
	userItem, emailItem := items[0].Put.Item, items[1].Put.Item
	if s(userItem["id"]) != got.ID || s(userItem["name"]) != req.Name || s(userItem["email"]) != req.Email {
		t.Fatalf("stored user %v does not match %+v", userItem, got)
	}
	if s(emailItem["id"]) != user.EmailKey(req.Email) || s(emailItem["user_id"]) != got.ID {
		t.Fatalf("stored reservation %v does not match %+v", emailItem, got)
	}
}

func s(av types.AttributeValue) string {
	if v, ok := av.(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return "<not a string>"
}

// TestValidationFindingsOfTheFuzzTargets pins the fixes for what FuzzNormalizeEmail and FuzzParseCreateRequest
// found (corpus entries in testdata/fuzz/):
//   - an address that lower-cases to more bytes than it had (U+023A "Ⱥ", two bytes, becomes U+2C65 "ⱥ", three)
//     passed the 254-byte limit and was stored longer than it, so the stored address did not validate as itself;
//   - bytes that are not UTF-8 (Latin-1 "é") in the name or the address were read as U+FFFD by encoding/json
//     and stored as text the client never sent.
func TestValidationFindingsOfTheFuzzTargets(t *testing.T) {
	long := strings.Repeat("Ⱥ", 120) + "@example.com" // 252 bytes as sent, 372 lower-cased
	_, msg := user.NormalizeEmail(long)
	assert.Contains(t, msg, "at most 254")
	norm, msg := user.NormalizeEmail(strings.Repeat("Ⱥ", 80) + "@example.com") // 252 bytes lower-cased
	assert.Empty(t, msg)
	assert.Equal(t, strings.Repeat("ⱥ", 80)+"@example.com", norm)

	for _, tc := range []struct {
		name, body, field string
	}{
		{"Latin-1 name", "{\"name\":\"Caf\xe9\",\"email\":\"cafe@example.com\"}", ""},
		{"Latin-1 address", "{\"name\":\"Café\",\"email\":\"caf\xe9@example.com\"}", ""},
		{"U+FFFD in the name", `{"name":"Caf\ufffd","email":"cafe@example.com"}`, "name"},
		{"unpaired surrogate escape in the address", `{"name":"Café","email":"caf\udc00@example.com"}`, "email"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obj, p := httpapi.ReadObject(tc.body, false)
			if tc.field == "" { // raw bytes that are not UTF-8: the whole body is refused before any field is read
				require.NotNil(t, p)
				assert.Contains(t, p.Detail, "not valid UTF-8")
				return
			}
			require.Nil(t, p)
			_, errs := user.ParseCreateRequest(obj)
			require.Len(t, errs, 1)
			assert.Equal(t, tc.field, errs[0].Field)
			assert.Contains(t, errs[0].Message, "must be UTF-8 text")
		})
	}
}
