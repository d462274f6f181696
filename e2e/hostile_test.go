package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/handlers/payment/payment"
	"github.com/idemkit/idemkit/internal/testwait"
)

// Hostile input (issue #5, item 4), black box through the shared `lambdalocal serve` and, for what no HTTP
// client can send, `lambdalocal invoke` with the event API Gateway would deliver.

// stored reports whether POST /payments with key from principal left an idempotency record and a payment. The
// record is found by its scope ID inside the stored key (whatever prefix the store adds); the payment by the ID
// the service derives from that scope ID.
func stored(t *testing.T, principal, key string) (record, paymentItem bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	scopeID := paymentScopeID(principal, key)
	db := dynamoClient()
	items, err := scanAll(ctx, db, "IdempotencyTable")
	require.NoError(t, err)
	for _, it := range items {
		if s, ok := it["id"].(*types.AttributeValueMemberS); ok && strings.Contains(s.Value, scopeID) {
			record = true
		}
	}
	out, err := db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String("PaymentsTable"),
		Key:            map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: payment.PaymentID(scopeID)}},
		ConsistentRead: aws.Bool(true),
	})
	require.NoError(t, err)
	return record, len(out.Item) > 0
}

// assertNothingStored checks that no idempotency record and no payment exist for any of keys (the key as sent
// and the readings a lenient parser could make of it).
func assertNothingStored(t *testing.T, principal string, keys ...string) {
	t.Helper()
	for _, k := range keys {
		rec, pay := stored(t, principal, k)
		assert.False(t, rec, "an idempotency record for the key %q", k)
		assert.False(t, pay, "a payment for the key %q", k)
	}
}

// rawRequest sends one HTTP/1.1 request over a plain TCP connection to the API, for what net/http refuses to
// send: header lines are written byte for byte (CR, LF, NUL, bytes that are not UTF-8). The body is written from
// another goroutine, so an answer given before the body is read (413) is still received.
func rawRequest(t *testing.T, method, path string, headerLines []string, body []byte) response {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(baseURL, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	var head strings.Builder
	fmt.Fprintf(&head, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n",
		method, path, strings.TrimPrefix(baseURL, "http://"), len(body))
	for _, l := range headerLines {
		head.WriteString(l + "\r\n")
	}
	head.WriteString("\r\n")
	written := make(chan struct{})
	go func() {
		defer close(written)
		// An error here is the server closing after answering early; the answer is what the test checks.
		_, _ = conn.Write(append([]byte(head.String()), body...))
	}()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(time.Minute)))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err, "%s %s over TCP", method, path)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	conn.Close() // unblocks the writer if the server stopped reading
	testwait.Recv(t, written, "the raw request's writer to end")
	return response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// assertStillServing is "the function instance survives": a valid payment right after the hostile requests.
func assertStillServing(t *testing.T) {
	t.Helper()
	r := request(t, http.MethodPost, "/payments", withKey(newKey(t)), paymentBody(1500, cardVisa, "after hostile input"))
	assertCreated(t, r, 1500, "after hostile input")
}

// TestHostileBodySize: bodies over Lambda's 6 MB invocation limit and over API Gateway's 10 MB limit are answered
// 413 at the edge; the function never sees them, so nothing is stored.
func TestHostileBodySize(t *testing.T) {
	big := func(size int) []byte { // a valid payment request, card data included, padded by its description
		prefix := paymentBody(2000, cardVisa, "")
		prefix = prefix[:len(prefix)-2] // drop `"}`
		return []byte(prefix + strings.Repeat("x", size-len(prefix)-2) + `"}`)
	}
	t.Run("over the 6 MB Lambda payload limit", func(t *testing.T) {
		key := newKey(t)
		r := request(t, http.MethodPost, "/payments", withKey(key), string(big(7<<20)))
		assert.Equal(t, http.StatusRequestEntityTooLarge, r.Status)
		assert.JSONEq(t, `{"message":"Request Too Long"}`, string(r.Body))
		assert.Empty(t, r.Header.Get("Idempotent-Replayed"), "the function was not invoked")
		assertNothingStored(t, "anonymous", key)
	})
	t.Run("over the 10 MB API Gateway limit", func(t *testing.T) {
		key := newKey(t)
		rememberKey(key)
		r := rawRequest(t, http.MethodPost, "/payments", []string{"Idempotency-Key: " + key}, big(11<<20))
		assert.Equal(t, http.StatusRequestEntityTooLarge, r.Status)
		assert.Equal(t, "HTTP content length exceeded 10485760 bytes.", string(r.Body))
		assert.Empty(t, r.Header.Get("Idempotent-Replayed"), "the function was not invoked")
		assertNothingStored(t, "anonymous", key)
	})
	assertStillServing(t)
}

// TestHostileBodies: malformed and deeply nested JSON gets a 4xx problem+json whose detail says what is wrong,
// never a 5xx, and the function keeps serving.
func TestHostileBodies(t *testing.T) {
	valid := paymentBody(2000, cardVisa, "hostile")
	amount := func(v string) string { return strings.Replace(valid, `"amount":2000`, `"amount":`+v, 1) }
	description := func(v string) string { return strings.Replace(valid, `"description":"hostile"`, `"description":`+v, 1) }
	tests := []struct {
		name   string
		body   string
		status int
		detail string   // in the problem's detail
		fields []string // named by errors[] (validation problems)
	}{
		{"empty", "", 400, "empty", nil},
		{"truncated", valid[:len(valid)-20], 400, "ends before the object is complete", nil},
		{"trailing garbage", valid + ` {"amount":1}`, 400, "unexpected data after the object", nil},
		{"not an object", `[` + valid + `]`, 400, "must be a JSON object, not an array", nil},
		{"wrong types", `{"amount":"2000","currency":840,"card_number":4242424242424242,"cvv":8531,"expiry_month":7,"expiry_year":2030}`,
			400, "invalid fields", []string{"amount", "currency", "card_number", "cvv", "expiry_month", "expiry_year"}},
		{"duplicate keys", valid[:len(valid)-1] + `,"amount":1}`, 400, `"amount" appears more than once`, nil},
		{"huge integer", amount("1" + strings.Repeat("0", 400)), 400, "invalid fields", []string{"amount"}},
		{"huge exponent", amount("1e999999"), 400, "invalid fields", []string{"amount"}},
		{"NaN literal", amount("NaN"), 400, "invalid character 'N'", nil},
		{"byte order mark", "\ufeff" + valid, 400, "Malformed JSON at byte offset 1", nil},
		{"invalid UTF-8 in a string", description("\"caf\xe9\""), 400, "not valid UTF-8 (byte offset", nil},
		{"invalid UTF-8 between tokens", strings.Replace(valid, `,"currency"`, "\xff,\"currency\"", 1), 400, "not valid UTF-8 (byte offset", nil},
		{"unpaired surrogate escape", description(`"caf\ud800"`), 400, "invalid fields", []string{"description"}},
		{"NUL in a string", description(`"a\u0000b"`), 400, "invalid fields", []string{"description"}},
		{"60000 '[' in a member (within the service's 64 KiB)", `{"amount":` + strings.Repeat("[", 60000), 400, "exceeded max depth", nil},
		{"12000 nested objects", `{"amount":` + strings.Repeat(`{"a":`, 12000), 400, "exceeded max depth", nil},
		{"6000 nested objects, closed", amount(strings.Repeat(`{"a":`, 6000) + "1" + strings.Repeat("}", 6000)), 400, "invalid fields", []string{"amount"}},
		{"100000 '['", strings.Repeat("[", 100000), 413, "larger than 65536 bytes", nil},
		{"5 MB of '[' (within Lambda's 6 MB)", strings.Repeat("[", 5<<20), 413, "larger than 65536 bytes", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key := newKey(t)
			r := request(t, http.MethodPost, "/payments", withKey(key), tc.body)
			p := assertProblem(t, r, tc.status)
			assert.Contains(t, p["detail"], tc.detail)
			assert.Equal(t, "false", r.Header.Get("Idempotent-Replayed"))
			assertNoCardData(t, r)
			var named []string
			errs, _ := p["errors"].([]any)
			for _, e := range errs {
				m, _ := e.(map[string]any)
				f, _ := m["field"].(string)
				msg, _ := m["message"].(string)
				assert.NotEmpty(t, msg, "errors[].message: %s", r.Body)
				named = append(named, f)
			}
			assert.ElementsMatch(t, tc.fields, named, "fields named in errors: %s", r.Body)
			_, pay := stored(t, "anonymous", key)
			assert.False(t, pay, "no payment")
		})
	}
	assertStillServing(t)

	t.Run("POST /users", func(t *testing.T) {
		for name, body := range map[string]string{
			"name not UTF-8":    "{\"name\":\"Caf\xe9\",\"email\":\"" + uniqueEmail(t) + "\"}",
			"address not UTF-8": "{\"name\":\"Café\",\"email\":\"caf\xe9." + uniqueEmail(t) + "\"}",
			"deep nesting":      `{"name":` + strings.Repeat("[", 60000),
			"NaN":               `{"name":NaN}`,
		} {
			t.Run(name, func(t *testing.T) {
				r := request(t, http.MethodPost, "/users", withKey(newKey(t)), body)
				p := assertProblem(t, r, http.StatusBadRequest)
				assert.NotEmpty(t, p["detail"])
			})
		}
		r := request(t, http.MethodPost, "/users", withKey(newKey(t)), userBody("Still Serving", uniqueEmail(t)))
		assert.Equal(t, http.StatusCreated, r.Status, "body %s", r.Body)
	})
}

// TestHostileKeys: malformed Idempotency-Key values get 400 problem+json naming the header and the reason, and
// leave no record and no payment. net/http sends what it can; the rest goes over raw TCP. Go's HTTP server (the
// local API Gateway) refuses control characters in a header value itself, with a plain-text 400, before any
// function runs; TestHostileKeyEvents covers the events API Gateway could deliver with such values.
func TestHostileKeys(t *testing.T) {
	body := paymentBody(2600, cardVisa, "hostile key")
	t.Run("control: a well-formed key is stored", func(t *testing.T) {
		key := newKey(t)
		assertCreated(t, request(t, http.MethodPost, "/payments", withKey(key), body), 2600, "hostile key")
		rec, pay := stored(t, "anonymous", key)
		assert.True(t, rec, "the lookup finds a record")
		assert.True(t, pay, "the lookup finds a payment")
	})

	for _, tc := range []struct {
		name, key, reason string
	}{
		{"non-ASCII (Cyrillic)", "e2e-ключ-" + newKey(t), "position 5 "},
		{"non-ASCII (emoji)", newKey(t) + "-😀", "position 38 "},
		{"tab inside", "e2e-tab\tinside-" + newKey(t), "position 8 "},
		{"space inside", "e2e-space inside-" + newKey(t), "position 10 "},
		{"256 bytes", newKey(t) + strings.Repeat("x", 256-36), "longer than 255"},
		{"4096 bytes", newKey(t) + strings.Repeat("x", 4096-36), "longer than 255"},
		{"empty", "", "empty"},
		{"whitespace only", " \t  ", "empty"},
		{"comma", newKey(t) + "," + newKey(t), "comma"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := request(t, http.MethodPost, "/payments", withKey(tc.key), body)
			p := assertProblem(t, r, http.StatusBadRequest)
			assert.Contains(t, p["detail"], "Idempotency-Key header")
			assert.Contains(t, p["detail"], tc.reason)
			assert.Equal(t, "false", r.Header.Get("Idempotent-Replayed"))
			assertNothingStored(t, "anonymous", tc.key, strings.TrimSpace(tc.key))
		})
	}

	t.Run("raw TCP", func(t *testing.T) {
		raw := []byte(body)
		t.Run("obs-fold (CRLF + space) is read as a space", func(t *testing.T) {
			a, b := newKey(t), newKey(t)
			rememberKey(a)
			rememberKey(b)
			r := rawRequest(t, http.MethodPost, "/payments", []string{"Idempotency-Key: " + a + "\r\n " + b}, raw)
			p := assertProblem(t, r, http.StatusBadRequest)
			assert.Contains(t, p["detail"], "Idempotency-Key header")
			assert.Contains(t, p["detail"], "position 37 ")
			assertNothingStored(t, "anonymous", a, b, a+" "+b, a+"\r\n "+b)
		})
		t.Run("byte that is not UTF-8", func(t *testing.T) {
			key := newKey(t) + "\xe9"
			rememberKey(key[:36])
			r := rawRequest(t, http.MethodPost, "/payments", []string{"Idempotency-Key: " + key}, raw)
			p := assertProblem(t, r, http.StatusBadRequest)
			assert.Contains(t, p["detail"], "position 37 ")
			assertNothingStored(t, "anonymous", key, key[:36])
		})
		for name, ctl := range map[string]string{"bare CR": "\r", "NUL": "\x00", "SOH": "\x01", "ESC": "\x1b", "DEL": "\x7f"} {
			t.Run(name+" is refused by the local API Gateway", func(t *testing.T) {
				a, b := newKey(t), newKey(t)
				rememberKey(a)
				rememberKey(b)
				r := rawRequest(t, http.MethodPost, "/payments", []string{"Idempotency-Key: " + a + ctl + b}, raw)
				assert.Equal(t, http.StatusBadRequest, r.Status, "body %s", r.Body)
				assert.Empty(t, r.Header.Get("Idempotent-Replayed"), "no function ran")
				assertNothingStored(t, "anonymous", a, b, a+ctl+b)
			})
		}
		t.Run("bare LF ends the header line", func(t *testing.T) {
			// HTTP/1.1 lets a recipient read a bare LF as a line end: the key is what precedes it, and the rest
			// is another header, which nothing echoes.
			a := newKey(t)
			rememberKey(a)
			r := rawRequest(t, http.MethodPost, "/payments", []string{"Idempotency-Key: " + a + "\nX-Injected: yes"}, raw)
			assertCreated(t, r, 2600, "hostile key")
			assert.Empty(t, r.Header.Get("X-Injected"))
			rec, _ := stored(t, "anonymous", a)
			assert.True(t, rec, "recorded under the part before the LF")
		})
	})
	assertStillServing(t)
}

// principalEvent is the REST event of e2e/testdata/payment-principal.json (a Lambda authorizer's principalId in
// requestContext.authorizer) with its blanks filled in.
func principalEvent(t *testing.T, principal, key, body string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, "e2e", "testdata", "payment-principal.json"))
	require.NoError(t, err)
	var ev events.APIGatewayProxyRequest
	require.NoError(t, json.Unmarshal(raw, &ev))
	ev.Body = body
	ev.Headers["Idempotency-Key"] = key
	ev.MultiValueHeaders["Idempotency-Key"] = []string{key}
	ev.RequestContext.Authorizer["principalId"] = principal
	out, err := json.Marshal(ev)
	require.NoError(t, err)
	return out
}

func invokePayment(t *testing.T, event []byte) lambdaResponse {
	t.Helper()
	out := lambdaInvoke(t, "PaymentFunction", "-", event)
	for _, s := range []string{cardVisa, `\"` + cvvHTTP + `\"`} {
		assert.NotContains(t, string(out), s, "no card number or CVV in a response")
	}
	return decodeLambdaResponse(t, out)
}

// TestHostileKeyEvents: keys with CR/LF and control characters in events, as API Gateway could deliver them to
// the function (no HTTP client can put them on the wire), get 400 problem+json and store nothing.
func TestHostileKeyEvents(t *testing.T) {
	t.Parallel()
	body := paymentBody(2700, cardVisa, "hostile event")
	for name, sep := range map[string]string{"CR/LF": "\r\nX-Injected: yes\r\n", "NUL and ESC": "\x00\x1b[31m"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			a := newKey(t)
			rememberKey(a)
			key := a + sep
			resp := invokePayment(t, principalEvent(t, "mallory", key, body))
			assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "body %s", resp.Body)
			assert.Equal(t, "application/problem+json", resp.Headers["Content-Type"])
			assert.Equal(t, "false", resp.Headers["Idempotent-Replayed"])
			var p map[string]any
			require.NoError(t, json.Unmarshal([]byte(resp.Body), &p), resp.Body)
			assert.Contains(t, p["detail"], "Idempotency-Key header")
			assert.Contains(t, p["detail"], "position 37 ")
			for k, v := range resp.Headers {
				assert.NotContains(t, k+v, "\n", "no header splitting")
				assert.NotContains(t, k, "Injected")
			}
			assertNothingStored(t, "lambda:mallory", key, a, strings.TrimSpace(key))
		})
	}
}

// TestHostileKeyFromAnotherPrincipal: bob sends alice's key. The key is scoped to the caller, so bob's request
// is its own execution with its own payment, nothing of alice's answer reaches him, a different body is not a
// mismatch, and alice's record is untouched.
func TestHostileKeyFromAnotherPrincipal(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	rememberKey(key)
	aliceBody := paymentBody(3100, cardVisa, "alice's order")
	bobBody := paymentBody(4200, cardVisa, "bob's order")

	alice := invokePayment(t, principalEvent(t, "alice", key, aliceBody))
	require.Equal(t, http.StatusCreated, alice.StatusCode, alice.Body)
	assert.Equal(t, "false", alice.Headers["Idempotent-Replayed"])
	var a payment.Payment
	require.NoError(t, json.Unmarshal([]byte(alice.Body), &a))
	aliceScope := paymentScopeID("lambda:alice", key) // a Lambda authorizer's principalId, namespaced
	assert.Equal(t, payment.PaymentID(aliceScope), a.ID)

	bob := invokePayment(t, principalEvent(t, "bob", key, bobBody))
	require.Equal(t, http.StatusCreated, bob.StatusCode, "a different body from another principal is not a 422: %s", bob.Body)
	assert.Equal(t, "false", bob.Headers["Idempotent-Replayed"], "bob's request ran, it is not alice's replay")
	var b payment.Payment
	require.NoError(t, json.Unmarshal([]byte(bob.Body), &b))
	bobScope := paymentScopeID("lambda:bob", key)
	assert.Equal(t, payment.PaymentID(bobScope), b.ID)
	assert.NotEqual(t, a.ID, b.ID)
	assert.Equal(t, int64(4200), b.Amount)
	assert.Equal(t, "bob's order", b.Description)
	for _, s := range []string{a.ID, "3100", "alice's order"} {
		assert.NotContains(t, bob.Body, s, "nothing of alice's answer in bob's")
		for k, v := range bob.Headers {
			assert.NotContains(t, v, s, "header %s", k)
		}
	}

	// Anonymous HTTP with the same key is a third scope.
	anon := request(t, http.MethodPost, "/payments", withKey(key), paymentBody(5300, cardVisa, "anonymous order"))
	anonID := assertCreated(t, anon, 5300, "anonymous order")
	assert.NotContains(t, []string{a.ID, b.ID}, anonID)

	// Alice's record is intact: her retry is a replay of her own answer.
	again := invokePayment(t, principalEvent(t, "alice", key, aliceBody))
	assert.Equal(t, http.StatusCreated, again.StatusCode)
	assert.Equal(t, "true", again.Headers["Idempotent-Replayed"])
	assert.Equal(t, alice.Body, again.Body)

	for _, principal := range []string{"lambda:alice", "lambda:bob"} {
		rec, pay := stored(t, principal, key)
		assert.True(t, rec, "%s's record", principal)
		assert.True(t, pay, "%s's payment", principal)
	}
}
