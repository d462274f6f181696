package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/internal/faultinject"
)

// TestDynamoDBCallsPerRequest counts, at a proxy in front of DynamoDB Local, the calls the functions make for one
// request through `lambdalocal serve` (one instance per function): POST /users with a key is one call (the claim
// merged into the registration's transaction), POST /payments makes two on the idempotency table (claim,
// completion transaction). A duplicate or a mismatch on the same instance is answered from its local cache;
// the store's one call for those is counted by the dynamostore and user tests.
func TestDynamoDBCallsPerRequest(t *testing.T) {
	cr := startProxiedRunner(t, nil)
	post := func(path, key, body string) response {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, cr.url+path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", key)
		rememberKey(key)
		resp, err := cr.client.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return response{Status: resp.StatusCode, Header: resp.Header, Body: b}
	}

	cr.inj.Reset()
	userKey := newKey(t)
	r := post("/users", userKey, userBody("Alice", uniqueEmail(t)))
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	t.Logf("first POST /users with a key: %v", cr.inj.Counts())
	assert.Equal(t, map[string]int{"TransactWriteItems/atomic-complete": 1}, cr.inj.Counts(), "first POST /users with a key")

	cr.inj.Reset()
	r = post("/users", userKey, userBody("Bob", uniqueEmail(t)))
	assertProblem(t, r, http.StatusUnprocessableEntity)
	assert.Zero(t, cr.inj.Count("", faultinject.PhaseAny), "mismatch on POST /users, from the local cache: %v", cr.inj.Counts())

	cr.inj.Reset()
	payKey := newKey(t)
	r = post("/payments", payKey, paymentBody(1200, cardVisa, "calls"))
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	counts := cr.inj.Counts()
	// Exactly the claim and the completion transaction on the service's side, nothing read before charging
	// (issue #11), and one PutItem of the simulated card processor's ledger (ProcessorTable), which stands for the
	// processor's own call and is not the service's.
	assert.Equal(t, map[string]int{"PutItem/claim": 1, "TransactWriteItems/atomic-complete": 1, "PutItem/other": 1}, counts,
		"first POST /payments")
	t.Logf("first POST /payments: %v", counts)

	cr.inj.Reset()
	r = post("/payments", payKey, paymentBody(1200, cardVisa, "other"))
	assertProblem(t, r, http.StatusUnprocessableEntity)
	assert.Zero(t, cr.inj.Count("", faultinject.PhaseAny), "mismatch on POST /payments, from the local cache: %v", cr.inj.Counts())
}
