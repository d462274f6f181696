package gateway_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/cmd/lambdalocal/internal/gateway"
)

func TestRouterMatch(t *testing.T) {
	r, err := gateway.NewRouter([]gateway.Route{
		{Path: "/payments", Method: "POST", Function: "Create"},
		{Path: "/payments/{id}", Method: "GET", Function: "Get"},
		{Path: "/payments/refunds", Method: "GET", Function: "Refunds"},
		{Path: "/payments/{id}", Method: "ANY", Function: "AnyPayment"},
		{Path: "/users/{proxy+}", Method: "ANY", Function: "Users"},
		{Path: "/users/{id}/avatar", Method: "get", Function: "Avatar"},
		{Path: "/{proxy+}", Method: "ANY", Function: "CatchAll"},
	})
	require.NoError(t, err)
	tests := []struct {
		method, path string
		want         string
		params       map[string]string
	}{
		{"POST", "/payments", "Create", nil},
		{"POST", "/payments/", "Create", nil},
		{"GET", "/payments/pay_1", "Get", map[string]string{"id": "pay_1"}},
		{"DELETE", "/payments/pay_1", "AnyPayment", map[string]string{"id": "pay_1"}},
		{"GET", "/payments/refunds", "Refunds", nil},
		{"POST", "/payments/refunds", "AnyPayment", map[string]string{"id": "refunds"}},
		{"GET", "/users/u1/avatar", "Avatar", map[string]string{"id": "u1"}},
		{"GET", "/users/u1/avatar/big", "Users", map[string]string{"proxy": "u1/avatar/big"}},
		{"GET", "/users/u1", "Users", map[string]string{"proxy": "u1"}},
		{"GET", "/payments", "CatchAll", map[string]string{"proxy": "payments"}},
		{"GET", "/anything/else", "CatchAll", map[string]string{"proxy": "anything/else"}},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			rt, params, ok := r.Match(tt.method, tt.path)
			require.True(t, ok)
			assert.Equal(t, tt.want, rt.Function)
			assert.Equal(t, tt.params, params)
		})
	}
	t.Run("greedy needs a segment", func(t *testing.T) {
		_, _, ok := r.Match("GET", "/")
		assert.False(t, ok)
	})
}

func TestRouterNoMatch(t *testing.T) {
	r, err := gateway.NewRouter([]gateway.Route{{Path: "/payments/{id}", Method: "GET", Function: "Get"}})
	require.NoError(t, err)
	for _, c := range [][2]string{{"GET", "/payments"}, {"POST", "/payments/1"}, {"GET", "/payments/1/x"}, {"GET", "/"}} {
		_, _, ok := r.Match(c[0], c[1])
		assert.False(t, ok, "%s %s", c[0], c[1])
	}
}

func TestNewRouterErrors(t *testing.T) {
	tests := map[string]gateway.Route{
		"relative":        {Path: "payments", Method: "GET"},
		"greedy not last": {Path: "/{proxy+}/x", Method: "GET"},
		"partial param":   {Path: "/pay-{id}", Method: "GET"},
		"empty param":     {Path: "/{}", Method: "GET"},
	}
	for name, rt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := gateway.NewRouter([]gateway.Route{rt})
			assert.Error(t, err)
		})
	}
	_, err := gateway.NewRouter([]gateway.Route{
		{Path: "/a/{x}", Method: "GET", Function: "F"}, {Path: "/a/{y}", Method: "GET", Function: "G"},
	})
	assert.ErrorContains(t, err, "both F and G")
}
