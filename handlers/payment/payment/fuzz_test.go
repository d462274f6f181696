package payment_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
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
	"github.com/idemkit/idemkit/handlers/payment/payment"
	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/apigw"
	"github.com/idemkit/idemkit/idempotent/memstore"
)

// Hostile input (issue #5): the fuzz targets below hold the POST /payments validation and the whole wrapped
// handler to these rules for any body and any Idempotency-Key:
//   - nothing panics and every outcome is a response (never a Go error, never a 500);
//   - a request that is accepted satisfies every documented constraint (CONTRACT §3);
//   - a rejection is a problem+json with a non-empty detail, and every field error names its field and says why;
//   - no card number and no CVV of the request ever appears in a response, a log line, a stored payment or a
//     recorded idempotency response.

// fuzzBodySeeds are the request bodies every payment fuzz target starts from: valid requests of each kind and
// the hostile shapes of issue #5 (malformed, truncated, duplicate members, huge numbers, NaN, BOM, invalid
// UTF-8, deep nesting, card data where it does not belong).
var fuzzBodySeeds = []string{
	`{"amount":2000,"currency":"usd","card_number":"4242424242424242","cvv":"407","expiry_month":"07","expiry_year":"2030","description":"Order #1001"}`,
	`{"amount":1,"currency":"EUR","card_number":"5555 5555 5555 4444","cvv":"9876","expiry_month":"11","expiry_year":"2026"}`,
	`{"amount":99999999,"currency":"jpy","card_number":"378282246310005","cvv":"1234","expiry_month":"12","expiry_year":"2046","description":null}`,
	`{"amount":2000,"currency":"usd","card_number":"4000000000000002","cvv":"407","expiry_month":"07","expiry_year":"2030"}`,
	`{"amount":2000,"currency":"usd","card_number":"4000000000009995","cvv":"407","expiry_month":"07","expiry_year":"2030"}`,
	`{"amount":2000,"currency":"usd","card_number":"4000000000000119","cvv":"407","expiry_month":"07","expiry_year":"2030"}`,
	`{"amount":0,"currency":"usd","card_number":"4242424242424241","cvv":"12","expiry_month":"13","expiry_year":"1999","description":"x"}`,
	`{"amount":2000,"currency":"usd","card_number":"4242424242424242","cvv":"407","expiry_month":"07","expiry_year":"2030","cvv":"408"}`,
	`{"amount":2000,"currency":"usd","card_number":"4242424242424242","cvv":"407","expiry_month":"07","expiry_year":"2030","note":"4242424242424242"}`,
	`{"amount":2000,"currency":"usd","card_number":"4242424242424242","cvv":"407","expiry_month":"07","expiry_year":"2030","description":"card 4242424242424242 cvv 407"}`,
	`{"amount":123456789012345678901234567890,"currency":"usd","card_number":"4242424242424242","cvv":"407","expiry_month":"07","expiry_year":"2030"}`,
	`{"amount":-9223372036854775809,"currency":"usd","card_number":"4242424242424242","cvv":"407","expiry_month":"07","expiry_year":"2030"}`,
	`{"amount":1e400,"currency":"usd","card_number":"4242424242424242","cvv":"407","expiry_month":"07","expiry_year":"2030"}`,
	`{"amount":NaN,"currency":"usd","card_number":"4242424242424242","cvv":"407"}`,
	"\ufeff{\"amount\":2000,\"currency\":\"usd\",\"card_number\":\"4242424242424242\",\"cvv\":\"407\",\"expiry_month\":\"07\",\"expiry_year\":\"2030\"}",
	"{\"amount\":2000,\"currency\":\"usd\",\"card_number\":\"4242424242424242\",\"cvv\":\"407\",\"expiry_month\":\"07\",\"expiry_year\":\"2030\",\"description\":\"caf\xe9\"}",
	"{\"amount\":2000,\"currency\":\"usd\",\"card_number\":\"4242424242424242\",\"cvv\":\"407\",\"expiry_month\":\"07\",\"expiry_year\":\"2030\",\"description\":\"tab\\there\"}",
	`{"amount":2000,"currency":"usd","card_number":"4242424242424242","cvv":"407","expiry_month":"07","expiry_year":"2030"`,
	`{"amount":2000,"currency":"usd","card_number":"4242424242424242","cvv":"407","expiry_month":"07","expiry_year":"2030"} trailing`,
	`{"amount":"2000","currency":1,"card_number":4242424242424242,"cvv":407,"expiry_month":7,"expiry_year":2030,"description":[]}`,
	`{"amount":2000,"currency":"usd","card_number":"4242-4242-4242-4242","cvv":"407","expiry_month":"07","expiry_year":"2030"}`,
	`{"amount":2000,"currency":"usd","card_number":"４２４２４２４２４２４２４２４２","cvv":"４０７","expiry_month":"07","expiry_year":"2030"}`,
	`{"card\u005fnumber":"4242424242424242","c\u0076v":"407"}`,
	`{"amount":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}`,
	`[` + strings.Repeat("[", 2000) + `{"card_number":"4242424242424242"}`,
	`{"4242424242424242":1,"4242424242424242":2}`,
	`{"":""}`,
	`null`, `""`, `[]`, ``, ` `,
}

var fuzzTime = time.Date(2026, time.November, 22, 12, 0, 0, 0, time.UTC)

// FuzzParseCreateRequest fuzzes the body validation of POST /payments on its own.
func FuzzParseCreateRequest(f *testing.F) {
	for _, b := range fuzzBodySeeds {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body string) {
		sec := scanSecrets([]byte(body))
		obj, p := httpapi.ReadObject(body, false)
		if p != nil {
			checkProblem(t, p.Response(), p.Status)
			if p.Status != http.StatusBadRequest && p.Status != http.StatusRequestEntityTooLarge {
				t.Fatalf("a body is refused with 400 or 413, got %d", p.Status)
			}
			sec.check(t, "problem", p.Response().Body)
			return
		}
		req, errs := payment.ParseCreateRequest(obj, fuzzTime)
		if errs != nil {
			if req != (payment.CreateRequest{}) {
				t.Fatalf("a rejected request returns no data: %#v", req)
			}
			checkFieldErrors(t, errs, sec)
			resp := httpapi.Validation(errs).Response()
			checkProblem(t, resp, http.StatusBadRequest)
			sec.check(t, "validation problem", resp.Body)
			return
		}
		checkAccepted(t, req, fuzzTime)
		checkFaithful(t, body, req)
	})
}

var (
	lowerCurrency = regexp.MustCompile(`^[a-z]{3}$`)
	digitsOnly    = regexp.MustCompile(`^[0-9]+$`)
	cvvForm       = regexp.MustCompile(`^[0-9]{3,4}$`)
)

// checkAccepted holds an accepted request to CONTRACT §3 and the documented limits.
func checkAccepted(t *testing.T, req payment.CreateRequest, now time.Time) {
	t.Helper()
	if req.Amount < payment.MinAmount || req.Amount > payment.MaxAmount {
		t.Fatalf("amount %d outside %d..%d", req.Amount, payment.MinAmount, payment.MaxAmount)
	}
	if !lowerCurrency.MatchString(req.Currency) || !payment.IsActiveCurrency(req.Currency) {
		t.Fatalf("currency %q is not a lower-case active ISO 4217 code", req.Currency)
	}
	n := req.Card.Number
	if !digitsOnly.MatchString(n) || len(n) < 12 || len(n) > 19 || !payment.Luhn(n) {
		t.Fatalf("card number of %d characters is not 12-19 Luhn-valid digits", len(n))
	}
	if !cvvForm.MatchString(req.Card.CVV) {
		t.Fatalf("CVV of %d characters is not 3-4 digits", len(req.Card.CVV))
	}
	y, m := req.Card.ExpYear, req.Card.ExpMonth
	if m < 1 || m > 12 || y < now.Year() || (y == now.Year() && m < int(now.Month())) || y > now.Year()+payment.MaxExpiryYears {
		t.Fatalf("expiry %02d/%d is past or too far ahead of %s", m, y, now.Format("01/2006"))
	}
	d := req.Description
	switch {
	case d != strings.TrimSpace(d):
		t.Fatalf("description %q is not trimmed", d)
	case !utf8.ValidString(d):
		t.Fatalf("description %q is not valid UTF-8", d)
	case utf8.RuneCountInString(d) > payment.MaxDescriptionLen:
		t.Fatalf("description of %d characters is longer than %d", utf8.RuneCountInString(d), payment.MaxDescriptionLen)
	case strings.IndexFunc(d, unicode.IsControl) >= 0:
		t.Fatalf("description %q holds a control character", d)
	}
}

// checkFaithful compares an accepted request with an independent reading of the body by encoding/json: the
// validator normalises (lower-case currency, spaces out of the card number, trimmed description) but never
// invents or drops anything.
func checkFaithful(t *testing.T, body string, req payment.CreateRequest) {
	t.Helper()
	if !utf8.ValidString(body) {
		// encoding/json reads bytes that are not UTF-8 as U+FFFD: accepting them would store text the client
		// never sent.
		t.Fatalf("accepted a body that is not valid UTF-8: %q", body)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		t.Fatalf("accepted a body encoding/json refuses: %v", err)
	}
	str := func(name string) string {
		var s string
		if err := json.Unmarshal(raw[name], &s); err != nil {
			t.Fatalf("accepted %q that is not a string", name)
		}
		return s
	}
	if got := strings.TrimSpace(string(raw["amount"])); got != itoa(req.Amount) {
		t.Fatalf("amount %s read as %d", got, req.Amount)
	}
	if c := str("currency"); strings.ToLower(c) != req.Currency {
		t.Fatalf("currency %q read as %q", c, req.Currency)
	}
	if strings.ReplaceAll(str("card_number"), " ", "") != req.Card.Number || str("cvv") != req.Card.CVV {
		t.Fatal("card number or CVV read differently from the body")
	}
	var desc string
	if d, ok := raw["description"]; ok && string(d) != "null" {
		desc = strings.TrimSpace(str("description"))
	}
	if desc != req.Description {
		t.Fatalf("description %q read as %q", desc, req.Description)
	}
	for name := range raw {
		switch name {
		case "amount", "currency", "card_number", "cvv", "expiry_month", "expiry_year", "description":
		default:
			t.Fatalf("accepted the unknown member %q", name)
		}
	}
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// checkFieldErrors requires a message for every field error and a field name unless the body has a member whose
// name is empty (httpapi reports it as an unknown field named "").
func checkFieldErrors(t *testing.T, errs []httpapi.FieldError, sec secrets) {
	t.Helper()
	for _, e := range errs {
		if strings.TrimSpace(e.Message) == "" || (e.Field == "" && !slices.Contains(sec.names, "")) {
			t.Fatalf("field error without field or message: %+v", e)
		}
	}
}

// checkProblem checks an RFC 9457 response: problem+json, the standard members set and consistent.
func checkProblem(t *testing.T, resp events.APIGatewayProxyResponse, status int) map[string]any {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", resp.StatusCode, status, resp.Body)
	}
	if resp.Headers["Content-Type"] != httpapi.ContentTypeProblem {
		t.Fatalf("Content-Type %q, want problem+json: %s", resp.Headers["Content-Type"], resp.Body)
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
	return p
}

// FuzzCreatePayment fuzzes POST /payments end to end in process: the service behind apigw.REST on memstore and
// the in-memory payments table, with an arbitrary body and Idempotency-Key, each request sent twice.
func FuzzCreatePayment(f *testing.F) {
	keys := []string{"key-1", "", " ", "\t \t", "k\r\nX-Injected: 1", "clé", "\x00", "k\x7f", "a,b", " padded\t",
		strings.Repeat("k", 255), strings.Repeat("k", 256), "\u202etxt", "%0d%0a"}
	for i, b := range fuzzBodySeeds {
		f.Add(b, keys[i%len(keys)])
	}
	for _, k := range keys {
		f.Add(fuzzBodySeeds[0], k)
	}
	f.Fuzz(func(t *testing.T, body, key string) {
		tb := newTable(t)
		proc := payment.NewSimulatedProcessor()
		var logs bytes.Buffer
		logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		svc := payment.New(tb.db(), tb.name, func(o *payment.Options) {
			o.Processor = proc
			o.Now = func() time.Time { return fuzzTime }
			o.Logger = logger
			o.ScopeID = func(ctx context.Context) (string, bool) {
				inv, ok := idempotent.FromContext(ctx)
				return inv.ID, ok
			}
		})
		store := memstore.New()
		h := apigw.REST(idempotent.New(store, idempotent.WithDisabled(false), idempotent.WithLogger(logger)), svc.Handle)

		ev := loadEvent(t, "testdata/create.json")
		ev.Body = body
		ev.Headers["Idempotency-Key"] = key
		ev.MultiValueHeaders["Idempotency-Key"] = []string{key}
		sec := scanSecrets([]byte(body))

		first, err := h(context.Background(), ev)
		if err != nil {
			t.Fatalf("the wrapped handler returned an error: %v", err)
		}
		sec.check(t, "response", responseText(first))
		if first.Headers[apigw.ReplayedHeader] != "false" {
			t.Fatalf("first request: %s %q", apigw.ReplayedHeader, first.Headers[apigw.ReplayedHeader])
		}

		trimmed := strings.Trim(key, " \t")
		if trimmed == "" || strings.Contains(trimmed, ",") || idempotent.ValidateKey(trimmed) != nil {
			p := checkProblem(t, first, http.StatusBadRequest)
			if !strings.HasSuffix(p["type"].(string), "#invalid-key") || !strings.Contains(p["detail"].(string), "Idempotency-Key header") {
				t.Fatalf("a malformed key gets the invalid-key problem naming the header: %s", first.Body)
			}
			if tb.gets != 0 || proc.Calls() != 0 || len(tb.writes) != 0 || store.Len() != 0 {
				t.Fatalf("a malformed key ran the handler or stored something (gets %d, charges %d, writes %d, records %d)",
					tb.gets, proc.Calls(), len(tb.writes), store.Len())
			}
			sec.check(t, "logs", logs.String())
			return
		}

		want := expectedStatus(body)
		scopeID := idempotent.Scope{Principal: "anonymous", Method: http.MethodPost, Route: payment.ResourcePayments}.ID(trimmed)
		if first.StatusCode == http.StatusCreated {
			checkCreated(t, first, body, payment.PaymentID(scopeID), tb)
		} else {
			p := checkProblem(t, first, first.StatusCode)
			if first.StatusCode == http.StatusBadRequest && p["errors"] != nil {
				for _, e := range p["errors"].([]any) {
					m, _ := e.(map[string]any)
					if f, _ := m["field"].(string); f == "" && !slices.Contains(sec.names, "") {
						t.Fatalf("field error without a field: %s", first.Body)
					}
					if msg, _ := m["message"].(string); msg == "" {
						t.Fatalf("field error without a message: %s", first.Body)
					}
				}
			}
			if len(tb.writes) != 0 {
				t.Fatalf("a %d stored a payment", first.StatusCode)
			}
		}
		if first.StatusCode != want {
			t.Fatalf("status %d, but the validator and the processor's test cards say %d: %s", first.StatusCode, want, first.Body)
		}

		calls, writes := proc.Calls(), len(tb.writes)
		second, err := h(context.Background(), ev)
		if err != nil {
			t.Fatalf("the wrapped handler returned an error on the retry: %v", err)
		}
		sec.check(t, "retry response", responseText(second))
		if second.StatusCode != first.StatusCode || second.Body != first.Body {
			t.Fatalf("the retry answered %d %s, the first %d %s", second.StatusCode, second.Body, first.StatusCode, first.Body)
		}
		if apigw.DefaultRecordStatus(first.StatusCode) {
			if second.Headers[apigw.ReplayedHeader] != "true" || proc.Calls() != calls || len(tb.writes) != writes {
				t.Fatalf("a recorded %d was not replayed without running the handler", first.StatusCode)
			}
			rec, err := store.Get(context.Background(), scopeID, time.Now())
			if err != nil || rec == nil {
				t.Fatalf("no record for a recorded %d: %v", first.StatusCode, err)
			}
			sec.check(t, "recorded response", recordText(t, rec.Response))
		} else if second.Headers[apigw.ReplayedHeader] != "false" || store.Len() != 0 {
			t.Fatalf("a %d was recorded (replayed %q, %d records)", first.StatusCode, second.Headers[apigw.ReplayedHeader], store.Len())
		}
		if len(tb.writes) > 1 {
			t.Fatalf("%d payments stored for one request sent twice", len(tb.writes))
		}
		for _, it := range tb.writes {
			sec.checkItem(t, it)
		}
		sec.check(t, "logs", logs.String())
	})
}

// expectedStatus is what POST /payments must answer for body, from the validator and the simulated processor's
// test cards alone.
func expectedStatus(body string) int {
	obj, p := httpapi.ReadObject(body, false)
	if p != nil {
		return p.Status
	}
	req, errs := payment.ParseCreateRequest(obj, fuzzTime)
	switch {
	case errs != nil:
		return http.StatusBadRequest
	case req.Card.Number == payment.TestCardDeclined, req.Card.Number == payment.TestCardInsufficientFunds:
		return http.StatusPaymentRequired
	case req.Card.Number == payment.TestCardProcessingError:
		return http.StatusBadGateway
	}
	return http.StatusCreated
}

// checkCreated checks a 201 against the request the validator reads from body and the stored item.
func checkCreated(t *testing.T, resp events.APIGatewayProxyResponse, body, id string, tb *table) {
	t.Helper()
	obj, _ := httpapi.ReadObject(body, false)
	req, errs := payment.ParseCreateRequest(obj, fuzzTime)
	if errs != nil {
		t.Fatalf("201 for a body the validator refuses: %v", errs)
	}
	checkAccepted(t, req, fuzzTime)
	checkFaithful(t, body, req)
	if resp.Headers["Content-Type"] != httpapi.ContentTypeJSON || resp.Headers["Location"] != "/payments/"+id {
		t.Fatalf("201 headers %v, want JSON and Location /payments/%s", resp.Headers, id)
	}
	var got payment.Payment
	dec := json.NewDecoder(strings.NewReader(resp.Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("201 body is not a payment: %v: %s", err, resp.Body)
	}
	want := payment.Payment{
		ID: id, Amount: req.Amount, Currency: req.Currency, Status: payment.StatusSucceeded,
		Card:        payment.CardSummary{Brand: payment.DetectBrand(req.Card.Number), Last4: req.Card.Number[len(req.Card.Number)-4:]},
		Description: req.Description, CreatedAt: fuzzTime.Format(time.RFC3339),
	}
	if got != want {
		t.Fatalf("201 body %+v, want %+v", got, want)
	}
	if len(tb.writes) != 1 {
		t.Fatalf("%d payments stored for one 201", len(tb.writes))
	}
	it := tb.writes[0]
	names := make([]string, 0, len(it))
	for n := range it {
		names = append(names, n)
	}
	slices.Sort(names)
	wantNames := []string{"amount", "authorization_id", "card", "created_at", "currency", "description", "id", "status"}
	if req.Description == "" {
		wantNames = slices.DeleteFunc(wantNames, func(s string) bool { return s == "description" })
	}
	if !slices.Equal(names, wantNames) {
		t.Fatalf("stored attributes %v, want %v", names, wantNames)
	}
	card, ok := it["card"].(*types.AttributeValueMemberM)
	if !ok {
		t.Fatalf("stored card is not a map")
	}
	cardNames := make([]string, 0, len(card.Value))
	for n := range card.Value {
		cardNames = append(cardNames, n)
	}
	slices.Sort(cardNames)
	if !slices.Equal(cardNames, []string{"brand", "exp_month", "exp_year", "last4"}) {
		t.Fatalf("stored card attributes %v", cardNames)
	}
	if s := card.Value["last4"].(*types.AttributeValueMemberS).Value; s != want.Card.Last4 {
		t.Fatalf("stored last4 %q, want %q", s, want.Card.Last4)
	}
}

func responseText(r events.APIGatewayProxyResponse) string {
	var b strings.Builder
	for k, v := range r.Headers {
		b.WriteString(k + ": " + v + "\n")
	}
	for k, vs := range r.MultiValueHeaders {
		b.WriteString(k + ": " + strings.Join(vs, ", ") + "\n")
	}
	b.WriteString(r.Body)
	return b.String()
}

// recordText decodes a recorded response (JSON with the body as a string) into the text a client would get.
func recordText(t *testing.T, data []byte) string {
	t.Helper()
	var r events.APIGatewayProxyResponse
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatalf("recorded response is not JSON: %v", err)
	}
	return string(data) + "\n" + responseText(r)
}

// secrets are the card numbers and CVVs a JSON text carries, as found by a tolerant token walk: values of
// "card_number" and "cvv" members at any depth, also in a text that breaks off or goes wrong later.
type secrets struct {
	pans   []string // card_number values, raw and without spaces, of 12 or more characters
	cvvs   []string // cvv values of 3-4 digits
	others []string // every other member name, string and number, which the service may legitimately echo
	names  []string // every member name
}

func scanSecrets(body []byte) secrets {
	var s secrets
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	type frame struct {
		object    bool
		expectKey bool
		name      string
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		inValue := top != nil && top.object && !top.expectKey
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{', '[':
				if inValue {
					top.expectKey = true
				}
				stack = append(stack, &frame{object: v == '{', expectKey: v == '{'})
			default:
				stack = stack[:len(stack)-1]
			}
		case string:
			switch {
			case top != nil && top.object && top.expectKey:
				top.name, top.expectKey = v, false
				s.others = append(s.others, v)
				s.names = append(s.names, v)
			case inValue && top.name == "card_number":
				for _, c := range []string{v, strings.ReplaceAll(v, " ", "")} {
					if len(c) >= 12 {
						s.pans = append(s.pans, c)
					}
				}
			case inValue && top.name == "cvv" && cvvForm.MatchString(v):
				s.cvvs = append(s.cvvs, v)
			default:
				s.others = append(s.others, v)
			}
			if inValue {
				top.expectKey = true
			}
		default:
			if n, ok := v.(json.Number); ok {
				s.others = append(s.others, n.String())
			}
			if inValue {
				top.expectKey = true
			}
		}
	}
	return s
}

// echoed reports whether the client sent secret elsewhere too (in a description, as a member name), where the
// service may legitimately return it.
func (s secrets) echoed(secret string) bool {
	for _, o := range s.others {
		if strings.Contains(o, secret) {
			return true
		}
	}
	return false
}

// cvvExempt reports whether a CVV is indistinguishable from data the service may return: sent elsewhere, or
// equal to the last four digits of a card number (which the API returns).
func (s secrets) cvvExempt(cvv string) bool {
	for _, o := range s.others {
		if o == cvv {
			return true
		}
	}
	for _, p := range s.pans {
		if strings.HasSuffix(p, cvv) {
			return true
		}
	}
	return false
}

// leak describes the card number or CVV (as a JSON string value) that text holds, or returns "".
func (s secrets) leak(text string) string {
	for _, p := range s.pans {
		if strings.Contains(text, p) && !s.echoed(p) {
			return "the card number"
		}
	}
	for _, c := range s.cvvs {
		if strings.Contains(text, `"`+c+`"`) && !s.cvvExempt(c) {
			return "the CVV " + c
		}
	}
	return ""
}

// check fails when text (a response, log, record) holds a card number, or a CVV as a JSON string value.
func (s secrets) check(t *testing.T, where, text string) {
	t.Helper()
	if what := s.leak(text); what != "" {
		t.Fatalf("%s holds %s: %s", where, what, text)
	}
}

// checkItem fails when a stored item holds a card number anywhere or a CVV as a string value.
func (s secrets) checkItem(t *testing.T, it map[string]types.AttributeValue) {
	t.Helper()
	for _, v := range itemStrings(it) {
		s.check(t, "stored item", v)
	}
	for _, v := range stringValues(&types.AttributeValueMemberM{Value: it}) {
		for _, c := range s.cvvs {
			if v == c && !s.cvvExempt(c) {
				t.Fatalf("stored item holds the CVV %q", c)
			}
		}
	}
}

// stringValues collects the string (S) values of an attribute, nested ones included; numbers such as the expiry
// year are left out, as a four-digit CVV may equal one.
func stringValues(av types.AttributeValue) []string {
	switch v := av.(type) {
	case *types.AttributeValueMemberS:
		return []string{v.Value}
	case *types.AttributeValueMemberM:
		var out []string
		for _, e := range v.Value {
			out = append(out, stringValues(e)...)
		}
		return out
	case *types.AttributeValueMemberL:
		var out []string
		for _, e := range v.Value {
			out = append(out, stringValues(e)...)
		}
		return out
	}
	return nil
}

// TestDescriptionNotUTF8IsRefused pins the fix for the first finding of FuzzParseCreateRequest (corpus entry
// testdata/fuzz/FuzzParseCreateRequest/description-not-utf8): a Latin-1 "é" (0xE9) in the description was read
// as U+FFFD by encoding/json, and the payment was created with a description the client never sent.
func TestDescriptionNotUTF8IsRefused(t *testing.T) {
	for _, tc := range []struct {
		name, description string
		bodyRefused       bool // refused by httpapi.ReadObject before any field is read
		refused           bool // refused by the description rule
	}{
		{"Latin-1 byte", "caf\xe9", true, false},
		{"truncated UTF-8 sequence", "caf\xc3", true, false},
		{"U+FFFD itself", `caf\ufffd`, false, true},
		{"unpaired surrogate escape, decoded as U+FFFD", `caf\ud800`, false, true},
		{"UTF-8", "café ☕", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := `{"amount":2000,"currency":"usd","card_number":"4242424242424242","cvv":"407","expiry_month":"07","expiry_year":"2030","description":"` + tc.description + `"}`
			if tc.bodyRefused {
				_, p := httpapi.ReadObject(body, false)
				require.NotNil(t, p)
				assert.Equal(t, 400, p.Status)
				assert.Contains(t, p.Detail, "not valid UTF-8")
				return
			}
			req, errs := parse(t, body)
			if !tc.refused {
				require.Empty(t, errs)
				assert.Equal(t, "café ☕", req.Description)
				return
			}
			require.Len(t, errs, 1)
			assert.Equal(t, "description", errs[0].Field)
			assert.Contains(t, errs[0].Message, "must be UTF-8 text")
		})
	}
}

// TestScanSecrets keeps the fuzz targets' leak check honest: it must find card data where it is, and not where
// the client sent the same digits as something else.
func TestScanSecrets(t *testing.T) {
	s := scanSecrets([]byte(`{"amount":1,"card_number":"4242 4242 4242 4242","cvv":"407","x":{"cvv":"1234"},"description":"Order 4000000000000002"`))
	assert.ElementsMatch(t, []string{"4242 4242 4242 4242", "4242424242424242"}, s.pans)
	assert.ElementsMatch(t, []string{"407", "1234"}, s.cvvs)
	assert.Contains(t, s.others, "Order 4000000000000002")

	for _, tc := range []struct {
		name, text string
		leaks      bool
	}{
		{"card number", `{"n":"4242424242424242"}`, true},
		{"card number with spaces", `4242 4242 4242 4242`, true},
		{"CVV as a JSON string", `{"x":"407"}`, true},
		{"nested CVV", `{"x":"1234"}`, true},
		{"last four digits", `{"last4":"4242"}`, false},
		{"CVV digits in a number", `{"amount":407}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.leaks, s.leak(tc.text) != "")
		})
	}
	echoed := scanSecrets([]byte(`{"card_number":"4242424242424242","cvv":"4242","description":"4242424242424242"}`))
	assert.True(t, echoed.echoed("4242424242424242"), "sent in the description too")
	assert.True(t, echoed.cvvExempt("4242"), "equal to the card's last four digits")
}
