package payment_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSampleEvents runs the repository's events/ files, in their documented order, through the service on one
// table, so the samples stay valid requests with the outcomes events/README.md promises.
func TestSampleEvents(t *testing.T) {
	h := newHarness(t) // no engine: the service derives the scope from the Idempotency-Key header
	dir := "../../../events/"

	created := h.do(t, loadEvent(t, dir+"payment-create.json"))
	require.Equal(t, http.StatusCreated, created.StatusCode, created.Body)

	replay := h.do(t, loadEvent(t, dir+"payment-replay.json"))
	require.Equal(t, http.StatusCreated, replay.StatusCode, replay.Body)
	assert.Equal(t, created.Body, replay.Body)
	assert.Equal(t, 1, h.proc.Charges(), "the replay did not charge")

	problem(t, h.do(t, loadEvent(t, dir+"payment-mismatch.json")), http.StatusUnprocessableEntity)

	p := problem(t, h.do(t, loadEvent(t, dir+"payment-declined.json")), http.StatusPaymentRequired)
	assert.Equal(t, "generic_decline", p["decline_code"])

	problem(t, h.do(t, loadEvent(t, dir+"payment-get.json")), http.StatusNotFound)

	var rep struct{ ID string }
	require.NoError(t, json.Unmarshal([]byte(created.Body), &rep))
	get := loadEvent(t, dir+"payment-get.json")
	get.PathParameters["id"], get.Path = rep.ID, "/payments/"+rep.ID
	resp := h.do(t, get)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.JSONEq(t, created.Body, resp.Body)
}
