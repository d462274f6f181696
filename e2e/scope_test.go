package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestEventToTheWrongFunction: the two functions share one idempotency table (as one table per account does), and
// a payment event reaches the user function with the key the payment function recorded (`make invoke
// FUNCTION=UserFunction EVENT=events/payment-create.json`). Each function is its own scope, so the user function
// answers for itself and never replays the payment's 201.
func TestEventToTheWrongFunction(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(root, "events", "payment-create.json"))
	require.NoError(t, err)
	var ev map[string]any
	require.NoError(t, json.Unmarshal(raw, &ev))
	// A key of its own, so that TestEvents' first payment-create stays a first request.
	key := newKey(t)
	for _, name := range []string{"headers", "multiValueHeaders"} {
		headers, _ := ev[name].(map[string]any)
		for k := range headers {
			if http.CanonicalHeaderKey(k) == "Idempotency-Key" {
				delete(headers, k)
			}
		}
		if headers != nil && name == "headers" {
			headers["Idempotency-Key"] = key
		}
		if headers != nil && name == "multiValueHeaders" {
			headers["Idempotency-Key"] = []string{key}
		}
	}
	event, err := json.Marshal(ev)
	require.NoError(t, err)

	payment := decodeLambdaResponse(t, lambdaInvoke(t, "PaymentFunction", "-", event))
	require.Equal(t, http.StatusCreated, payment.StatusCode, "body %s", payment.Body)
	user := decodeLambdaResponse(t, lambdaInvoke(t, "UserFunction", "-", event))
	assert.NotEqual(t, "true", user.Headers["Idempotent-Replayed"], "the payment's response replayed by the user function")
	assert.NotEqual(t, http.StatusCreated, user.StatusCode, "body %s", user.Body)
	assert.NotContains(t, user.Body, "pay_")
	again := decodeLambdaResponse(t, lambdaInvoke(t, "PaymentFunction", "-", event))
	assert.Equal(t, "true", again.Headers["Idempotent-Replayed"])
	assert.Equal(t, payment.Body, again.Body)
}
