package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func userBody(name, email string) string {
	return fmt.Sprintf(`{"name":%q,"email":%q}`, name, email)
}

// uniqueEmail is an address no other test (nor events/user-create.json's alice@example.com) uses.
func uniqueEmail(t *testing.T) string {
	return "alice." + strings.TrimPrefix(newKey(t), "e2e-")[:12] + "@example.com"
}

// TestUsers covers CONTRACT §3 for /users: creation, case-insensitive e-mail uniqueness with and without a key,
// reads, and invalid input.
func TestUsers(t *testing.T) {
	email := uniqueEmail(t)
	created := request(t, http.MethodPost, "/users", withKey(newKey(t)), userBody("Alice", email))
	require.Equal(t, http.StatusCreated, created.Status, "body %s", created.Body)
	assert.Equal(t, "false", created.Header.Get("Idempotent-Replayed"))
	var u struct {
		ID        string `json:"id"`
		Name      string `json:"name"`
		Email     string `json:"email"`
		CreatedAt string `json:"created_at"`
	}
	require.NoError(t, json.Unmarshal(created.Body, &u))
	assert.Regexp(t, `^usr_[a-z2-7]+$`, u.ID)
	assert.Equal(t, "Alice", u.Name)
	assert.Equal(t, email, u.Email)
	assert.NotEmpty(t, u.CreatedAt)
	assert.Equal(t, "/users/"+u.ID, created.Header.Get("Location"))

	shouting := strings.ToUpper(email[:1]) + email[1:strings.Index(email, "@")] + "@EXAMPLE.com"
	conflicts := []struct {
		name   string
		header http.Header
		body   string
	}{
		{"duplicate e-mail in other letter case, another key", withKey(newKey(t)), userBody("Alice Again", shouting)},
		{"duplicate e-mail in other letter case, no key", nil, userBody("Alice Again", shouting)},
		{"duplicate e-mail, same case, no key", nil, userBody("Alice", email)},
	}
	for _, tc := range conflicts {
		t.Run(tc.name, func(t *testing.T) {
			assertProblem(t, request(t, http.MethodPost, "/users", tc.header, tc.body), http.StatusConflict)
		})
	}

	t.Run("without a key a new address is created", func(t *testing.T) {
		r := request(t, http.MethodPost, "/users", nil, userBody("Bob", uniqueEmail(t)))
		assert.Equal(t, http.StatusCreated, r.Status, "body %s", r.Body)
	})
	t.Run("invalid input", func(t *testing.T) {
		p := assertProblem(t, request(t, http.MethodPost, "/users", withKey(newKey(t)), `{"name":"","email":"not-an-address"}`), http.StatusBadRequest)
		assert.NotEmpty(t, p["errors"])
	})

	reads := []struct {
		name   string
		path   string
		status int
	}{
		{"created user", "/users/" + u.ID, http.StatusOK},
		{"unknown id", "/users/usr_aaaaaaaaaaaaaaaaaaaaaaaaaa", http.StatusNotFound},
	}
	for _, tc := range reads {
		t.Run("GET "+tc.name, func(t *testing.T) {
			r := request(t, http.MethodGet, tc.path, nil, "")
			if tc.status != http.StatusOK {
				assertProblem(t, r, tc.status)
				return
			}
			require.Equal(t, http.StatusOK, r.Status, "body %s", r.Body)
			assert.JSONEq(t, string(created.Body), string(r.Body))
		})
	}
}

// TestUnknownRoute: what API Gateway answers for a path or method that no route declares.
func TestUnknownRoute(t *testing.T) {
	tests := []struct{ method, path string }{
		{http.MethodGet, "/nothing-here"},
		{http.MethodDelete, "/payments"},
		{http.MethodPut, "/users/usr_x"},
		{http.MethodGet, "/payments/pay_x/refunds"},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			r := request(t, tc.method, tc.path, nil, "")
			assert.Equal(t, http.StatusForbidden, r.Status)
			assert.JSONEq(t, `{"message":"Missing Authentication Token"}`, string(r.Body))
		})
	}
}
