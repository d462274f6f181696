package user_test

import (
	"bytes"
	"context"
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
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/handlers/internal/httpapi"
	"github.com/idemkit/idemkit/handlers/user/user"
)

var testNow = time.Date(2026, time.November, 22, 12, 0, 0, 0, time.UTC)

type harness struct {
	tb   *table
	svc  *user.Service
	logs *bytes.Buffer
}

func newHarness(t *testing.T, optFns ...func(*user.Options)) *harness {
	h := &harness{tb: newTable(t), logs: &bytes.Buffer{}}
	h.svc = user.New(h.tb.db(), h.tb.name, append([]func(*user.Options){h.defaults}, optFns...)...)
	return h
}

func (h *harness) defaults(o *user.Options) {
	o.Now = func() time.Time { return testNow }
	o.Logger = slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func scope(id string) func(*user.Options) {
	return func(o *user.Options) { o.ScopeID = func(context.Context) (string, bool) { return id, true } }
}

func (h *harness) do(t *testing.T, req events.APIGatewayProxyRequest) events.APIGatewayProxyResponse {
	t.Helper()
	resp, err := h.svc.Handle(context.Background(), req)
	require.NoError(t, err)
	return resp
}

func register(t *testing.T, h *harness, name, email string) events.APIGatewayProxyResponse {
	t.Helper()
	ev := loadEvent(t, "testdata/create.json")
	b, _ := json.Marshal(map[string]string{"name": name, "email": email})
	ev.Body = string(b)
	return h.do(t, ev)
}

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

func TestParseCreateRequestRules(t *testing.T) {
	for _, tc := range []struct {
		name, body, field, want string
	}{
		{"name missing", `{"email":"a@example.com"}`, "name", "is required"},
		{"name null", `{"name":null,"email":"a@example.com"}`, "name", "is required"},
		{"name empty", `{"name":"","email":"a@example.com"}`, "name", "must not be empty"},
		{"name only spaces", `{"name":"   ","email":"a@example.com"}`, "name", "must not be empty"},
		{"name too long", `{"name":"` + strings.Repeat("a", 101) + `","email":"a@example.com"}`, "name", "at most 100 characters"},
		{"name newline", `{"name":"Al\nice","email":"a@example.com"}`, "name", "control characters"},
		{"name number", `{"name":42,"email":"a@example.com"}`, "name", "must be a string, not a number"},
		{"email missing", `{"name":"Alice"}`, "email", "is required"},
		{"email empty", `{"name":"Alice","email":" "}`, "email", "must not be empty"},
		{"email no at", `{"name":"Alice","email":"alice.example.com"}`, "email", "e-mail address such as"},
		{"email two ats", `{"name":"Alice","email":"a@b@example.com"}`, "email", "e-mail address such as"},
		{"email display name", `{"name":"Alice","email":"Alice <alice@example.com>"}`, "email", "e-mail address such as"},
		{"email comment", `{"name":"Alice","email":"alice@example.com (Alice)"}`, "email", "e-mail address such as"},
		{"email space", `{"name":"Alice","email":"ali ce@example.com"}`, "email", "e-mail address such as"},
		{"email dotless domain", `{"name":"Alice","email":"alice@localhost"}`, "email", "domain name"},
		{"email domain literal", `{"name":"Alice","email":"alice@[192.0.2.1]"}`, "email", "domain name"},
		{"email trailing dot", `{"name":"Alice","email":"alice@example.com."}`, "email", "e-mail address such as"},
		{"email too long", `{"name":"Alice","email":"` + strings.Repeat("a", 64) + "@" + strings.Repeat("b", 186) + `.com"}`, "email", "at most 254 characters"},
		{"email array", `{"name":"Alice","email":["a@example.com"]}`, "email", "must be a string, not an array"},
		{"unknown member", `{"name":"Alice","email":"a@example.com","admin":true}`, "admin", "is not a recognised field"},
		{"name is a card number", `{"name":"4111 1111 1111 1111","email":"a@example.com"}`, "name", "must not contain a card number"},
		{"name holds a card number", `{"name":"Alice 4111-1111-1111-1111","email":"a@example.com"}`, "name", "must not contain a card number"},
		{"email holds a card number", `{"name":"Alice","email":"4111111111111111@example.com"}`, "email", "must not contain a card number"},
		{"member name is a card number", `{"name":"Alice","email":"a@example.com","4111111111111111":1}`, "****************", "is not a recognised field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obj, p := httpapi.ReadObject(tc.body, false)
			require.Nil(t, p)
			_, errs := user.ParseCreateRequest(obj)
			require.Len(t, errs, 1, "%v", errs)
			assert.Equal(t, tc.field, errs[0].Field)
			assert.Contains(t, errs[0].Message, tc.want)
			assert.NotContains(t, errs[0].Field+errs[0].Message, "1111", "a card number must not come back")
		})
	}
}

func TestParseCreateRequestNormalises(t *testing.T) {
	obj, _ := httpapi.ReadObject(`{"name":"  Zoë Ångström  ","email":"  Zoe.Angstrom+News@Example.COM "}`, false)
	req, errs := user.ParseCreateRequest(obj)
	require.Empty(t, errs)
	assert.Equal(t, "Zoë Ångström", req.Name)
	assert.Equal(t, "zoe.angstrom+news@example.com", req.Email)

	obj, _ = httpapi.ReadObject(`{"name":"`+strings.Repeat("é", 100)+`","email":"a@b.co"}`, false)
	_, errs = user.ParseCreateRequest(obj)
	assert.Empty(t, errs, "100 characters are allowed, however many bytes")

	for _, email := range []string{"ü@exämple.com", "first.last+tag@sub.example.co.uk"} {
		norm, msg := user.NormalizeEmail(email)
		assert.Empty(t, msg, email)
		assert.Equal(t, strings.ToLower(email), norm)
	}
}

func TestCreateUser(t *testing.T) {
	h := newHarness(t, scope("scope-1"))
	resp := register(t, h, "Alice", "Alice@Example.com")
	id := user.UserID("scope-1")
	require.Equal(t, http.StatusCreated, resp.StatusCode, resp.Body)
	assert.Equal(t, "/users/"+id, resp.Headers["Location"])
	assert.Equal(t, "application/json", resp.Headers["Content-Type"])
	assert.JSONEq(t, fmt.Sprintf(`{"id":%q,"name":"Alice","email":"alice@example.com","created_at":"2026-11-22T12:00:00Z"}`, id), resp.Body)

	require.Len(t, h.tb.txs, 1)
	items := h.tb.txs[0].TransactItems
	require.Len(t, items, 2, "user and e-mail reservation in one transaction")
	assert.Equal(t, id, items[0].Put.Item["id"].(*types.AttributeValueMemberS).Value)
	assert.Equal(t, "EMAIL#alice@example.com", items[1].Put.Item["id"].(*types.AttributeValueMemberS).Value)
	assert.Equal(t, id, items[1].Put.Item["user_id"].(*types.AttributeValueMemberS).Value)
	assert.NotContains(t, h.logs.String(), "alice@example.com", "e-mail addresses are not logged")
}

func TestRandomIDWithoutScope(t *testing.T) {
	h := newHarness(t)
	a := register(t, h, "Alice", "alice@example.com")
	b := register(t, h, "Bob", "bob@example.com")
	require.Equal(t, http.StatusCreated, a.StatusCode)
	require.Equal(t, http.StatusCreated, b.StatusCode)
	assert.Regexp(t, `^/users/usr_[a-z2-7]{26}$`, a.Headers["Location"])
	assert.NotEqual(t, a.Headers["Location"], b.Headers["Location"])

	broken := newHarness(t, func(o *user.Options) { o.Rand = strings.NewReader("short") })
	p := problem(t, register(t, broken, "Alice", "alice@example.com"), http.StatusInternalServerError)
	assert.Equal(t, "The server could not complete the request.", p["detail"])
}

func TestEmailUniqueness(t *testing.T) {
	for _, dup := range []string{"alice@example.com", "ALICE@EXAMPLE.COM", " Alice@Example.Com "} {
		t.Run(dup, func(t *testing.T) {
			h := newHarness(t)
			require.Equal(t, http.StatusCreated, register(t, h, "Alice", "alice@example.com").StatusCode)
			resp := register(t, h, "Another Alice", dup)
			p := problem(t, resp, http.StatusConflict)
			assert.Equal(t, "E-mail address already registered", p["title"])
			assert.NotContains(t, resp.Body, "usr_", "the owner is not revealed")
			assert.Len(t, h.tb.items, 2, "nothing written by the refused registration")
		})
	}
	t.Run("with a key too", func(t *testing.T) {
		h := newHarness(t, scope("scope-1"))
		require.Equal(t, http.StatusCreated, register(t, h, "Alice", "alice@example.com").StatusCode)
		other := newHarness(t, scope("scope-2"))
		other.tb = h.tb
		other.svc = user.New(h.tb.db(), h.tb.name, other.defaults, scope("scope-2"))
		problem(t, register(t, other, "Alice", "ALICE@example.com"), http.StatusConflict)
	})
}

func TestRetryWithSameScopeAnswersTheSameUser(t *testing.T) {
	h := newHarness(t, scope("scope-1"))
	first := register(t, h, "Alice", "alice@example.com")
	require.Equal(t, http.StatusCreated, first.StatusCode)

	later := user.New(h.tb.db(), h.tb.name, h.defaults, scope("scope-1"), func(o *user.Options) {
		o.Now = func() time.Time { return testNow.Add(time.Hour) }
	})
	h.svc = later
	second := register(t, h, "Alice", "Alice@example.com")
	require.Equal(t, http.StatusCreated, second.StatusCode, second.Body)
	assert.Equal(t, first.Body, second.Body, "the stored user, created_at included")
	assert.Equal(t, first.Headers["Location"], second.Headers["Location"])

	t.Run("same key, other name", func(t *testing.T) {
		problem(t, register(t, h, "Alicia", "alice@example.com"), http.StatusUnprocessableEntity)
	})
	t.Run("same key, other e-mail", func(t *testing.T) {
		problem(t, register(t, h, "Alice", "alice2@example.com"), http.StatusUnprocessableEntity)
		_, taken := h.tb.items["EMAIL#alice2@example.com"]
		assert.False(t, taken, "the cancelled transaction reserved nothing")
	})
}

func TestCancellationWithoutOldItemsFallsBackToReads(t *testing.T) {
	// Some DynamoDB-compatible servers return reasons without the old items.
	h := newHarness(t)
	require.Equal(t, http.StatusCreated, register(t, h, "Alice", "alice@example.com").StatusCode)
	db := h.tb.db()
	db.transactWriteItems = func(ctx context.Context, in *dynamodb.TransactWriteItemsInput) (*dynamodb.TransactWriteItemsOutput, error) {
		for _, w := range in.TransactItems {
			w.Put.ReturnValuesOnConditionCheckFailure = types.ReturnValuesOnConditionCheckFailureNone
		}
		return h.tb.transact(ctx, in)
	}
	h.svc = user.New(db, h.tb.name, h.defaults)
	problem(t, register(t, h, "Bob", "alice@example.com"), http.StatusConflict)

	t.Run("no reasons at all", func(t *testing.T) {
		db.transactWriteItems = func(ctx context.Context, in *dynamodb.TransactWriteItemsInput) (*dynamodb.TransactWriteItemsOutput, error) {
			_, err := h.tb.transact(ctx, in)
			var tce *types.TransactionCanceledException
			if errors.As(err, &tce) {
				tce.CancellationReasons = nil
			}
			return nil, err
		}
		h.svc = user.New(db, h.tb.name, h.defaults)
		problem(t, register(t, h, "Bob", "alice@example.com"), http.StatusConflict)
	})
}

func TestTransientFailures(t *testing.T) {
	cancelled := func(code string) error {
		return &types.TransactionCanceledException{CancellationReasons: []types.CancellationReason{
			{Code: aws.String("None")}, {Code: aws.String(code)},
		}}
	}
	for _, tc := range []struct {
		name   string
		err    error
		status int
	}{
		{"transaction conflict", cancelled("TransactionConflict"), http.StatusServiceUnavailable},
		{"throttled item", cancelled("ThrottlingError"), http.StatusServiceUnavailable},
		{"conflict exception", &types.TransactionConflictException{Message: aws.String("x")}, http.StatusServiceUnavailable},
		{"connection reset on every attempt", fmt.Errorf("exceeded maximum number of attempts, 3: %w",
			&smithyhttp.RequestSendError{Err: fmt.Errorf("read tcp 10.1.2.3:443: %w", syscall.ECONNRESET)}), http.StatusServiceUnavailable},
		{"server fault", &types.InternalServerError{Message: aws.String("x")}, http.StatusServiceUnavailable},
		{"missing table", &types.ResourceNotFoundException{Message: aws.String("x")}, http.StatusInternalServerError},
		{"validation", cancelled("ValidationError"), http.StatusInternalServerError},
		{"other error", errors.New("dial tcp 10.1.2.3:443: refused"), http.StatusInternalServerError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			db := h.tb.db()
			db.transactWriteItems = func(context.Context, *dynamodb.TransactWriteItemsInput) (*dynamodb.TransactWriteItemsOutput, error) {
				return nil, tc.err
			}
			h.svc = user.New(db, h.tb.name, h.defaults)
			resp := register(t, h, "Alice", "alice@example.com")
			problem(t, resp, tc.status)
			assert.NotContains(t, resp.Body, "10.1.2.3")
			if tc.status == http.StatusServiceUnavailable {
				assert.Equal(t, "1", resp.Headers["Retry-After"])
			}
		})
	}
}

func TestGetUser(t *testing.T) {
	h := newHarness(t, scope("scope-1"))
	created := register(t, h, "Alice", "alice@example.com")
	require.Equal(t, http.StatusCreated, created.StatusCode)

	ev := loadEvent(t, "testdata/get.json")
	ev.PathParameters = map[string]string{"id": user.UserID("scope-1")}
	resp := h.do(t, ev)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.JSONEq(t, created.Body, resp.Body)
}

func TestGetUserNotFound(t *testing.T) {
	h := newHarness(t)
	require.Equal(t, http.StatusCreated, register(t, h, "Alice", "alice@example.com").StatusCode)
	for _, id := range []string{
		"usr_mfrggzdfmztwq2lknnwg23tpoa", // well-formed, absent
		"EMAIL#alice@example.com",        // the reservation item is not a user
		"usr_",
		"pay_mfrggzdfmztwq2lknnwg23tpoa",
		"",
	} {
		t.Run(id, func(t *testing.T) {
			ev := loadEvent(t, "testdata/get.json")
			ev.PathParameters = map[string]string{"id": id}
			p := problem(t, h.do(t, ev), http.StatusNotFound)
			assert.Equal(t, "about:blank", p["type"])
		})
	}
}

func TestRoutingAndMalformedBodies(t *testing.T) {
	h := newHarness(t)
	ev := loadEvent(t, "testdata/create.json")
	ev.HTTPMethod = http.MethodPut
	resp := h.do(t, ev)
	problem(t, resp, http.StatusMethodNotAllowed)
	assert.Equal(t, "POST", resp.Headers["Allow"])

	ev = loadEvent(t, "testdata/create.json")
	ev.Resource = "/users/{id}/avatar"
	problem(t, h.do(t, ev), http.StatusNotFound)

	for _, body := range []string{"", "{", "[]", `{"name":"a","name":"b","email":"a@b.co"}`} {
		ev = loadEvent(t, "testdata/create.json")
		ev.Body = body
		problem(t, h.do(t, ev), http.StatusBadRequest)
	}
	ev = loadEvent(t, "testdata/create.json")
	ev.Body = `{"name": "", "email": "nope", "role": "admin"}`
	p := problem(t, h.do(t, ev), http.StatusBadRequest)
	assert.Len(t, p["errors"], 3)
	assert.Empty(t, h.tb.txs)
}

func TestUserID(t *testing.T) {
	a := user.UserID("s")
	assert.Equal(t, a, user.UserID("s"))
	assert.NotEqual(t, a, user.UserID("t"))
	assert.True(t, user.ValidUserID(a))
	assert.Equal(t, "EMAIL#a@b.co", user.EmailKey("a@b.co"))
}
