package user_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSampleEvents runs the repository's user events in their documented order on one table.
func TestSampleEvents(t *testing.T) {
	h := newHarness(t)
	dir := "../../../events/"

	created := h.do(t, loadEvent(t, dir+"user-create.json"))
	require.Equal(t, http.StatusCreated, created.StatusCode, created.Body)
	assert.Contains(t, created.Body, `"email":"alice@example.com"`)

	problem(t, h.do(t, loadEvent(t, dir+"user-duplicate-email.json")), http.StatusConflict)
	problem(t, h.do(t, loadEvent(t, dir+"user-get.json")), http.StatusNotFound)

	var rep struct{ ID string }
	require.NoError(t, json.Unmarshal([]byte(created.Body), &rep))
	get := loadEvent(t, dir+"user-get.json")
	get.PathParameters["id"] = rep.ID
	resp := h.do(t, get)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.JSONEq(t, created.Body, resp.Body)
}
