package payment_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/handlers/payment/payment"
)

type harness struct {
	tb   *table
	proc *payment.SimulatedProcessor
	svc  *payment.Service
	logs *bytes.Buffer
}

func newHarness(t *testing.T, optFns ...func(*payment.Options)) *harness {
	t.Helper()
	h := &harness{tb: newTable(t), proc: payment.NewSimulatedProcessor(), logs: &bytes.Buffer{}}
	opts := append([]func(*payment.Options){func(o *payment.Options) {
		o.Processor = h.proc
		o.Now = func() time.Time { return testNow }
		o.Logger = slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}}, optFns...)
	h.svc = payment.New(h.tb.db(), h.tb.name, opts...)
	return h
}

func (h *harness) do(t *testing.T, req events.APIGatewayProxyRequest) events.APIGatewayProxyResponse {
	t.Helper()
	resp, err := h.svc.Handle(context.Background(), req)
	require.NoError(t, err, "the handler answers every outcome with a response")
	return resp
}

// problem decodes a problem+json response and checks its invariant members.
func problem(t *testing.T, resp events.APIGatewayProxyResponse, status int) map[string]any {
	t.Helper()
	require.Equal(t, status, resp.StatusCode, resp.Body)
	assert.Equal(t, "application/problem+json", resp.Headers["Content-Type"])
	var p map[string]any
	require.NoError(t, json.Unmarshal([]byte(resp.Body), &p))
	assert.Equal(t, float64(status), p["status"])
	assert.NotEmpty(t, p["type"])
	assert.NotEmpty(t, p["title"])
	return p
}

func scope(id string) func(o *payment.Options) {
	return func(o *payment.Options) {
		o.ScopeID = func(context.Context) (string, bool) { return id, true }
	}
}

func createEvent(t *testing.T) events.APIGatewayProxyRequest {
	return loadEvent(t, "testdata/create.json")
}

func bodyWith(t *testing.T, edit func(map[string]any)) string {
	t.Helper()
	b := validBody()
	edit(b)
	out, err := json.Marshal(b)
	require.NoError(t, err)
	return string(out)
}

func TestCreatePayment(t *testing.T) {
	h := newHarness(t, scope("scope-1"))
	resp := h.do(t, createEvent(t))

	id := payment.PaymentID("scope-1")
	require.Equal(t, http.StatusCreated, resp.StatusCode, resp.Body)
	assert.Equal(t, "application/json", resp.Headers["Content-Type"])
	assert.Equal(t, "/payments/"+id, resp.Headers["Location"])
	assert.JSONEq(t, fmt.Sprintf(`{
		"id": %q, "amount": 2000, "currency": "usd", "status": "succeeded",
		"card": {"brand": "visa", "last4": "4242"},
		"description": "Order #1001", "created_at": "2026-11-22T12:00:00Z"
	}`, id), resp.Body)
	assert.Equal(t, 1, h.proc.Charges())
}

func TestStoredItemHoldsNoCardNumberOrCVV(t *testing.T) {
	h := newHarness(t, scope("scope-1"))
	ev := createEvent(t)
	ev.Body = bodyWith(t, func(b map[string]any) { b["card_number"] = "5555 5555 5555 4444"; b["cvv"] = "9876" })
	resp := h.do(t, ev)
	require.Equal(t, http.StatusCreated, resp.StatusCode, resp.Body)

	require.Len(t, h.tb.writes, 1)
	item := h.tb.writes[0]
	for _, s := range itemStrings(item) {
		assert.NotContains(t, s, "5555555555554444", "card number stored")
		assert.NotContains(t, s, "555555", "card number prefix stored")
		assert.NotEqual(t, "9876", s, "CVV stored")
	}
	assert.ElementsMatch(t, []string{"id", "amount", "currency", "status", "card", "description", "authorization_id", "created_at"}, keys(item))
	card := item["card"].(*types.AttributeValueMemberM).Value
	assert.ElementsMatch(t, []string{"brand", "last4", "exp_month", "exp_year"}, keys(card))
	assert.Equal(t, "mastercard", card["brand"].(*types.AttributeValueMemberS).Value)
	assert.Equal(t, "4444", card["last4"].(*types.AttributeValueMemberS).Value)

	assert.NotContains(t, resp.Body, "5555555555554444")
	assert.NotContains(t, resp.Body, "9876")
	assert.NotContains(t, h.logs.String(), "5555555555554444", "card number logged")
	assert.NotContains(t, h.logs.String(), "9876", "CVV logged")
	assert.Contains(t, h.logs.String(), `"last4":"4444"`, "the redacted card is logged")
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestCreateWithoutDescriptionOmitsIt(t *testing.T) {
	h := newHarness(t, scope("scope-1"))
	ev := createEvent(t)
	ev.Body = bodyWith(t, func(b map[string]any) { delete(b, "description") })
	resp := h.do(t, ev)
	require.Equal(t, http.StatusCreated, resp.StatusCode, resp.Body)
	assert.NotContains(t, resp.Body, "description")
	assert.NotContains(t, keys(h.tb.writes[0]), "description")
}

func TestDeclinedCards(t *testing.T) {
	for _, tc := range []struct {
		card, code string
	}{
		{payment.TestCardDeclined, "generic_decline"},
		{payment.TestCardInsufficientFunds, "insufficient_funds"},
	} {
		t.Run(tc.code, func(t *testing.T) {
			h := newHarness(t, scope("scope-1"))
			ev := createEvent(t)
			ev.Body = bodyWith(t, func(b map[string]any) { b["card_number"] = tc.card })
			resp := h.do(t, ev)
			p := problem(t, resp, http.StatusPaymentRequired)
			assert.Equal(t, tc.code, p["decline_code"])
			assert.Equal(t, "Card declined", p["title"])
			assert.NotContains(t, resp.Body, tc.card)
			assert.Empty(t, h.tb.writes, "a decline stores nothing")
			assert.Equal(t, 0, h.proc.Charges())
			assert.NotContains(t, h.logs.String(), tc.card)
		})
	}
}

func TestProcessorFailureIs502AndStoresNothing(t *testing.T) {
	h := newHarness(t, scope("scope-1"))
	ev := createEvent(t)
	ev.Body = bodyWith(t, func(b map[string]any) { b["card_number"] = payment.TestCardProcessingError })
	p := problem(t, h.do(t, ev), http.StatusBadGateway)
	assert.NotContains(t, p["detail"], "unavailable: ", "no internal error string")
	assert.Empty(t, h.tb.writes)
}

func TestRetryAfterLostIdempotencyRecordDoesNotChargeAgain(t *testing.T) {
	h := newHarness(t, scope("scope-1"))
	first := h.do(t, createEvent(t))
	require.Equal(t, http.StatusCreated, first.StatusCode)

	// Same scope, same body, a minute later: the service finds its payment and answers with it.
	later := newHarness(t, scope("scope-1"))
	later.tb = h.tb
	later.proc = h.proc
	later.svc = payment.New(h.tb.db(), h.tb.name, func(o *payment.Options) {
		o.Processor = h.proc
		o.Now = func() time.Time { return testNow.Add(time.Minute) }
		o.ScopeID = func(context.Context) (string, bool) { return "scope-1", true }
	})
	second := later.do(t, createEvent(t))
	require.Equal(t, http.StatusCreated, second.StatusCode)
	assert.Equal(t, first.Body, second.Body, "the stored representation, created_at included")
	assert.Equal(t, first.Headers["Location"], second.Headers["Location"])
	assert.Equal(t, 1, h.proc.Charges(), "the processor recognised the reference: no second charge")
	assert.Len(t, h.tb.writes, 1)
}

func TestSameScopeDifferentPaymentIs422(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(map[string]any)
	}{
		{"amount", func(b map[string]any) { b["amount"] = 2001 }},
		{"currency", func(b map[string]any) { b["currency"] = "eur" }},
		{"card", func(b map[string]any) { b["card_number"] = "5555555555554444" }},
		{"expiry", func(b map[string]any) { b["expiry_year"] = "2031" }},
		{"description", func(b map[string]any) { b["description"] = "another order" }},
		{"description removed", func(b map[string]any) { delete(b, "description") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, scope("scope-1"))
			require.Equal(t, http.StatusCreated, h.do(t, createEvent(t)).StatusCode)
			ev := createEvent(t)
			ev.Body = bodyWith(t, tc.edit)
			resp := h.do(t, ev)
			p := problem(t, resp, http.StatusUnprocessableEntity)
			assert.Contains(t, p["detail"], "new key")
			assert.NotContains(t, resp.Body, "2000", "the stored payment is not revealed")
			assert.Equal(t, 1, h.proc.Charges(), "nothing charged for the second payment")
		})
	}
}

func TestSameBodyWithSpacesInCardNumberMatchesStoredPayment(t *testing.T) {
	h := newHarness(t, scope("scope-1"))
	require.Equal(t, http.StatusCreated, h.do(t, createEvent(t)).StatusCode)
	ev := createEvent(t)
	ev.Body = bodyWith(t, func(b map[string]any) { b["card_number"] = "4242 4242 4242 4242"; b["currency"] = "USD" })
	assert.Equal(t, http.StatusCreated, h.do(t, ev).StatusCode)
	assert.Equal(t, 1, h.proc.Charges())
}

func TestDifferentScopesAreDifferentPayments(t *testing.T) {
	h := newHarness(t, scope("scope-1"))
	require.Equal(t, http.StatusCreated, h.do(t, createEvent(t)).StatusCode)
	h.svc = payment.New(h.tb.db(), h.tb.name, func(o *payment.Options) {
		o.Processor = h.proc
		o.ScopeID = func(context.Context) (string, bool) { return "scope-2", true }
	})
	require.Equal(t, http.StatusCreated, h.do(t, createEvent(t)).StatusCode)
	assert.Equal(t, 2, h.proc.Charges())
	assert.Len(t, h.tb.items, 2)
}

func TestConcurrentWriteConflict(t *testing.T) {
	// Another invocation of the same request writes the payment between this one's read and its write.
	// A winner with other details reaches the table only through another processor (proc): one processor refuses
	// a reference reused with other details (ErrReferenceReused).
	winner := func(h *harness, proc *payment.SimulatedProcessor, edit func(map[string]any)) {
		other := payment.New(h.tb.db(), h.tb.name, func(o *payment.Options) {
			o.Processor = proc
			o.Now = func() time.Time { return testNow.Add(-time.Second) }
			o.ScopeID = func(context.Context) (string, bool) { return "scope-1", true }
		})
		ev := loadEvent(h.tb.t, "testdata/create.json")
		ev.Body = bodyWith(h.tb.t, edit)
		resp, _ := other.Handle(context.Background(), ev)
		require.Equal(h.tb.t, http.StatusCreated, resp.StatusCode, resp.Body)
	}
	racing := func(h *harness, proc *payment.SimulatedProcessor, edit func(map[string]any)) payment.Committer {
		return payment.CommitterFunc(func(ctx context.Context, w types.TransactWriteItem) error {
			winner(h, proc, edit)
			return payment.DirectCommitter{DB: h.tb.db()}.Commit(ctx, w)
		})
	}

	t.Run("same payment: 201 with the winner", func(t *testing.T) {
		h := newHarness(t, scope("scope-1"))
		h.svc = payment.New(h.tb.db(), h.tb.name, scope("scope-1"), func(o *payment.Options) {
			o.Processor = h.proc
			o.Now = func() time.Time { return testNow }
			o.Committer = racing(h, h.proc, func(map[string]any) {})
		})
		resp := h.do(t, createEvent(t))
		require.Equal(t, http.StatusCreated, resp.StatusCode, resp.Body)
		assert.Contains(t, resp.Body, `"created_at":"2026-11-22T11:59:59Z"`, "the winner's representation")
		assert.Equal(t, 1, h.proc.Charges(), "one reference, one charge at the processor")
		assert.Len(t, h.tb.writes, 1)
	})
	t.Run("different payment: 422", func(t *testing.T) {
		h := newHarness(t)
		h.svc = payment.New(h.tb.db(), h.tb.name, scope("scope-1"), func(o *payment.Options) {
			o.Processor = h.proc
			o.Committer = racing(h, payment.NewSimulatedProcessor(), func(b map[string]any) { b["amount"] = 1 })
		})
		problem(t, h.do(t, createEvent(t)), http.StatusUnprocessableEntity)
	})
	t.Run("unreadable winner: 409 with Retry-After", func(t *testing.T) {
		h := newHarness(t)
		db := h.tb.db()
		reads := 0
		db.getItem = func(ctx context.Context, in *dynamodb.GetItemInput) (*dynamodb.GetItemOutput, error) {
			reads++
			if reads > 1 {
				return nil, errors.New("boom")
			}
			return h.tb.get(ctx, in)
		}
		h.svc = payment.New(db, h.tb.name, scope("scope-1"), func(o *payment.Options) {
			o.Processor = h.proc
			o.Committer = payment.CommitterFunc(func(context.Context, types.TransactWriteItem) error {
				return fmt.Errorf("wrapped: %w", payment.ErrConflict)
			})
		})
		resp := h.do(t, createEvent(t))
		p := problem(t, resp, http.StatusConflict)
		assert.Equal(t, "1", resp.Headers["Retry-After"])
		assert.NotContains(t, p["detail"], "boom")
	})
}

func TestCommitterReceivesConditionalPut(t *testing.T) {
	h := newHarness(t)
	var got []types.TransactWriteItem
	h.svc = payment.New(h.tb.db(), h.tb.name, scope("scope-1"), func(o *payment.Options) {
		o.Processor = h.proc
		o.Committer = payment.CommitterFunc(func(_ context.Context, w types.TransactWriteItem) error {
			got = append(got, w)
			return nil // deferred: e.g. added to the idempotency completion transaction
		})
	})
	resp := h.do(t, createEvent(t))
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	require.Len(t, got, 1)
	put := got[0].Put
	require.NotNil(t, put)
	assert.Nil(t, got[0].Update)
	assert.Equal(t, h.tb.name, aws.ToString(put.TableName))
	requireNotExistsOnID(t, aws.ToString(put.ConditionExpression), put.ExpressionAttributeNames)
	assert.Equal(t, payment.PaymentID("scope-1"), put.Item["id"].(*types.AttributeValueMemberS).Value)
	assert.Empty(t, h.tb.writes, "the service did not write by itself")
}

func TestDirectCommitter(t *testing.T) {
	tb := newTable(t)
	c := payment.DirectCommitter{DB: tb.db()}
	item := map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: "pay_x"}}
	put := types.TransactWriteItem{Put: &types.Put{
		TableName:                aws.String(tb.name),
		Item:                     item,
		ConditionExpression:      aws.String("attribute_not_exists (#0)"),
		ExpressionAttributeNames: map[string]string{"#0": "id"},
	}}
	require.NoError(t, c.Commit(context.Background(), put))
	err := c.Commit(context.Background(), put)
	require.ErrorIs(t, err, payment.ErrConflict)
	var ccf *types.ConditionalCheckFailedException
	assert.ErrorAs(t, err, &ccf, "the SDK error stays reachable")

	err = c.Commit(context.Background(), types.TransactWriteItem{Delete: &types.Delete{}})
	require.Error(t, err)
	assert.NotErrorIs(t, err, payment.ErrConflict)
}

func TestIdempotencyKeyWithoutEngine(t *testing.T) {
	t.Run("header gives a stable scope", func(t *testing.T) {
		h := newHarness(t)
		first := h.do(t, createEvent(t))
		require.Equal(t, http.StatusCreated, first.StatusCode, first.Body)
		second := h.do(t, createEvent(t))
		assert.Equal(t, first.Body, second.Body)
		assert.Equal(t, 1, h.proc.Charges())
	})
	t.Run("header name is case-insensitive", func(t *testing.T) {
		h := newHarness(t)
		ev := createEvent(t)
		ev.Headers = map[string]string{"idempotency-key": "key-1"}
		ev.MultiValueHeaders = nil
		require.Equal(t, http.StatusCreated, h.do(t, ev).StatusCode)
	})
	for _, tc := range []struct {
		name    string
		headers map[string][]string
		title   string
	}{
		{"missing", map[string][]string{"Content-Type": {"application/json"}}, "Idempotency-Key required"},
		{"several values", map[string][]string{"Idempotency-Key": {"a", "b"}}, "Malformed Idempotency-Key"},
		{"empty", map[string][]string{"Idempotency-Key": {""}}, "Malformed Idempotency-Key"},
		{"space", map[string][]string{"Idempotency-Key": {"a b"}}, "Malformed Idempotency-Key"},
		{"too long", map[string][]string{"Idempotency-Key": {strings.Repeat("k", 256)}}, "Malformed Idempotency-Key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			ev := createEvent(t)
			ev.Headers = nil
			ev.MultiValueHeaders = tc.headers
			p := problem(t, h.do(t, ev), http.StatusBadRequest)
			assert.Equal(t, tc.title, p["title"])
			assert.Equal(t, 0, h.proc.Calls())
		})
	}
	t.Run("engine scope wins over the header", func(t *testing.T) {
		h := newHarness(t, scope("engine-scope"))
		resp := h.do(t, createEvent(t))
		assert.Equal(t, "/payments/"+payment.PaymentID("engine-scope"), resp.Headers["Location"])
	})
}

func TestMalformedBodies(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		base64     bool
		status     int
		detail     string
	}{
		{"empty", "", false, 400, "empty"},
		{"whitespace", "  \n", false, 400, "empty"},
		{"truncated", `{"amount": 2000`, false, 400, "ends before"},
		{"syntax", `{"amount": 20x0}`, false, 400, "Malformed JSON at byte offset"},
		{"array", `[1,2]`, false, 400, "must be a JSON object, not an array"},
		{"string", `"hello"`, false, 400, "not a string"},
		{"null", `null`, false, 400, "not null"},
		{"trailing data", `{"amount":1} {}`, false, 400, "after the object"},
		{"duplicate member", `{"amount":1,"amount":2}`, false, 400, `"amount" appears more than once`},
		{"bad base64", `not base64!`, true, 400, "base64"},
		{"too large", `{"description":"` + strings.Repeat("x", 70000) + `"}`, false, 413, "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, scope("s"))
			ev := createEvent(t)
			ev.Body, ev.IsBase64Encoded = tc.body, tc.base64
			p := problem(t, h.do(t, ev), tc.status)
			assert.Contains(t, p["detail"], tc.detail)
			assert.Nil(t, p["errors"])
			assert.Equal(t, 0, h.proc.Calls())
		})
	}
}

func TestBase64Body(t *testing.T) {
	h := newHarness(t, scope("s"))
	ev := createEvent(t)
	ev.Body, ev.IsBase64Encoded = base64.StdEncoding.EncodeToString([]byte(ev.Body)), true
	assert.Equal(t, http.StatusCreated, h.do(t, ev).StatusCode)
}

func TestValidationProblem(t *testing.T) {
	h := newHarness(t, scope("s"))
	ev := createEvent(t)
	ev.Body = `{"amount": 0, "currency": "usd", "card_number": "4242424242424241", "cvv": "1", "expiry_month": "07", "expiry_year": "2030", "extra": true}`
	resp := h.do(t, ev)
	p := problem(t, resp, http.StatusBadRequest)
	assert.Equal(t, "https://github.com/idemkit/idemkit/blob/main/handlers/internal/httpapi/problems.md#validation-error", p["type"])
	assert.JSONEq(t, `[
		{"field": "amount", "message": "must be an integer number of minor units between 1 and 99999999"},
		{"field": "card_number", "message": "is not a valid card number (the Luhn check digit does not match)"},
		{"field": "cvv", "message": "must be 3 or 4 digits"},
		{"field": "extra", "message": "is not a recognised field"}
	]`, mustJSON(t, p["errors"]))
	assert.NotContains(t, resp.Body, "4242424242424241")
	assert.Equal(t, 0, h.proc.Calls())
	assert.Empty(t, h.tb.writes)
	assert.Equal(t, 0, h.tb.gets, "invalid requests never reach the database")
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

func TestGetPayment(t *testing.T) {
	h := newHarness(t, scope("scope-1"))
	created := h.do(t, createEvent(t))
	require.Equal(t, http.StatusCreated, created.StatusCode)

	ev := loadEvent(t, "testdata/get.json")
	id := payment.PaymentID("scope-1")
	ev.PathParameters = map[string]string{"id": id}
	ev.Path = "/payments/" + id
	resp := h.do(t, ev)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.JSONEq(t, created.Body, resp.Body, "GET returns the representation POST returned")
	assert.Empty(t, resp.Headers["Location"])
}

func TestGetPaymentNotFound(t *testing.T) {
	for _, id := range []string{
		"pay_3i6vsm5hzkcaonbk4ycfhyxgzq", // well-formed, absent
		"pay_short",
		"usr_3i6vsm5hzkcaonbk4ycfhyxgzq",
		"PAY_3I6VSM5HZKCAONBK4YCFHYXGZQ",
		"",
	} {
		t.Run(id, func(t *testing.T) {
			h := newHarness(t)
			ev := loadEvent(t, "testdata/get.json")
			ev.PathParameters = map[string]string{"id": id}
			p := problem(t, h.do(t, ev), http.StatusNotFound)
			assert.Equal(t, "about:blank", p["type"])
			assert.Equal(t, "Not Found", p["title"])
		})
	}
}

func TestRouting(t *testing.T) {
	h := newHarness(t)
	ev := loadEvent(t, "testdata/get.json")

	ev.Resource, ev.HTTPMethod, ev.Path = "/refunds", http.MethodGet, "/refunds"
	problem(t, h.do(t, ev), http.StatusNotFound)

	ev.Resource, ev.HTTPMethod, ev.Path = "/payments", http.MethodGet, "/payments"
	resp := h.do(t, ev)
	problem(t, resp, http.StatusMethodNotAllowed)
	assert.Equal(t, "POST", resp.Headers["Allow"])

	ev.Resource, ev.HTTPMethod = "/payments/{id}", http.MethodDelete
	resp = h.do(t, ev)
	problem(t, resp, http.StatusMethodNotAllowed)
	assert.Equal(t, "GET", resp.Headers["Allow"])
}

type apiErr struct{ code string }

func (e apiErr) Error() string                 { return e.code + ": internal detail 10.0.0.1" }
func (e apiErr) ErrorCode() string             { return e.code }
func (e apiErr) ErrorMessage() string          { return "internal detail" }
func (e apiErr) ErrorFault() smithy.ErrorFault { return smithy.FaultServer }

func TestStoreFailures(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    error
		status int
	}{
		{"throttled", apiErr{"ThrottlingException"}, http.StatusServiceUnavailable},
		{"capacity", &types.ProvisionedThroughputExceededException{Message: aws.String("slow down")}, http.StatusServiceUnavailable},
		{"missing table", &types.ResourceNotFoundException{Message: aws.String("Requested resource not found")}, http.StatusInternalServerError},
		{"connection reset on every attempt", fmt.Errorf("exceeded maximum number of attempts, 3: %w",
			&smithyhttp.RequestSendError{Err: fmt.Errorf("read tcp 10.0.0.1:443: %w", syscall.ECONNRESET)}), http.StatusServiceUnavailable},
		{"anything else", errors.New("dial tcp 10.0.0.1:443: bad certificate"), http.StatusInternalServerError},
	} {
		for _, op := range []string{"get", "put"} {
			t.Run(tc.name+"/"+op, func(t *testing.T) {
				h := newHarness(t, scope("s"))
				db := h.tb.db()
				if op == "get" {
					db.getItem = func(context.Context, *dynamodb.GetItemInput) (*dynamodb.GetItemOutput, error) { return nil, tc.err }
				} else {
					db.putItem = func(context.Context, *dynamodb.PutItemInput) (*dynamodb.PutItemOutput, error) { return nil, tc.err }
				}
				h.svc = payment.New(db, h.tb.name, scope("s"), func(o *payment.Options) {
					o.Processor = h.proc
					o.Logger = slog.New(slog.NewJSONHandler(h.logs, nil))
				})
				ev := createEvent(t)
				if op == "get" { // the service's only read: POST /payments reads nothing before charging
					ev = events.APIGatewayProxyRequest{HTTPMethod: http.MethodGet, Resource: payment.ResourcePayment,
						Path: "/payments/" + payment.PaymentID("s"), PathParameters: map[string]string{"id": payment.PaymentID("s")}}
				}
				resp := h.do(t, ev)
				p := problem(t, resp, tc.status)
				assert.NotContains(t, resp.Body, "10.0.0.1", "no internal error string")
				assert.NotContains(t, resp.Body, "not found")
				if tc.status == http.StatusServiceUnavailable {
					assert.Equal(t, "1", resp.Headers["Retry-After"])
				}
				_ = p
				assert.Contains(t, h.logs.String(), "failed", "the cause is logged")
			})
		}
	}
}

func TestPaymentID(t *testing.T) {
	a := payment.PaymentID("scope-a")
	assert.Equal(t, a, payment.PaymentID("scope-a"), "stable")
	assert.NotEqual(t, a, payment.PaymentID("scope-b"))
	assert.True(t, payment.ValidPaymentID(a), a)
	assert.Len(t, a, len("pay_")+26)
	assert.Regexp(t, `^pay_[a-z2-7]{26}$`, a)
}

func TestCardRedaction(t *testing.T) {
	c := payment.Card{Number: "4242424242424242", CVV: "407", ExpMonth: 7, ExpYear: 2030}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "card", c)
	b, err := json.Marshal(struct{ Card payment.Card }{c})
	require.NoError(t, err)
	charge := payment.Charge{Reference: "pay_x", Amount: 1, Currency: "usd", Card: c}
	for _, s := range []string{
		fmt.Sprint(c), fmt.Sprintf("%v %+v %#v %s %q", c, c, c, c, c), fmt.Sprintf("%+v %#v", charge, charge),
		c.String(), c.GoString(), buf.String(), string(b),
	} {
		assert.NotContains(t, s, "4242424242424242")
		assert.NotContains(t, s, "407")
		assert.Contains(t, s, "4242")
	}
}

func TestSimulatedProcessorHonoursReferences(t *testing.T) {
	p := payment.NewSimulatedProcessor()
	card := payment.Card{Number: "4242424242424242", CVV: "123", ExpMonth: 1, ExpYear: 2030}
	a1, err := p.Charge(context.Background(), payment.Charge{Reference: "pay_a", Amount: 1, Currency: "usd", Card: card})
	require.NoError(t, err)
	a2, err := p.Charge(context.Background(), payment.Charge{Reference: "pay_a", Amount: 1, Currency: "usd", Card: card})
	require.NoError(t, err)
	assert.Equal(t, a1.ID, a2.ID, "same reference, same authorization")
	assert.False(t, a1.Replayed)
	assert.True(t, a2.Replayed, "the second charge moved no money")
	b, err := p.Charge(context.Background(), payment.Charge{Reference: "pay_b", Amount: 1, Currency: "usd", Card: card})
	require.NoError(t, err)
	assert.NotEqual(t, a1, b)
	assert.Equal(t, 2, p.Charges())
	assert.Equal(t, 3, p.Calls())

	_, err = p.Charge(context.Background(), payment.Charge{Reference: "pay_c", Card: payment.Card{Number: payment.TestCardDeclined}})
	var d *payment.DeclineError
	require.ErrorAs(t, err, &d)
	assert.ErrorIs(t, err, payment.ErrDeclined)
	assert.NotContains(t, err.Error(), payment.TestCardDeclined)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = p.Charge(ctx, payment.Charge{Reference: "pay_d", Card: card})
	assert.ErrorIs(t, err, context.Canceled)
}

func TestSimulatedProcessorMemoryIsBounded(t *testing.T) {
	p := payment.NewSimulatedProcessor()
	card := payment.Card{Number: "4242424242424242"}
	first, _ := p.Charge(context.Background(), payment.Charge{Reference: "ref-0", Card: card})
	for i := 1; i <= 10_000; i++ {
		_, err := p.Charge(context.Background(), payment.Charge{Reference: fmt.Sprintf("ref-%d", i), Card: card})
		require.NoError(t, err)
	}
	assert.Equal(t, 10_001, p.Charges())
	again, _ := p.Charge(context.Background(), payment.Charge{Reference: "ref-0", Card: card})
	assert.Equal(t, first, again, "authorization IDs are derived from the reference, so even a forgotten one matches")
}
