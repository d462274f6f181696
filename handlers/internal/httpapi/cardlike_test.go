package httpapi_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/handlers/internal/httpapi"
)

func TestContainsCardNumber(t *testing.T) {
	for _, tc := range []struct {
		text string
		want bool
	}{
		{"4242424242424242", true},
		{"card 4242 4242 4242 4242 cvv 407 exp 07/30", true},
		{"4242-4242-4242-4242", true},
		{"pay with 4111111111111111.", true},
		{"amex 3782 822463 10005 please", true},       // 15 digits in 4-6-5 groups
		{"4242 4242 4242 4242 407", true},             // the card's groups, then a CVV group
		{"407 4242 4242 4242 4242", true},             // a group before the card
		{"x4242424242424242x", true},                  // letters around do not hide it
		{"ref 424242424242", true},                    // 12 digits, Luhn-valid: the shortest card number
		{"4000000000000000006", true},                 // 19 digits, Luhn-valid
		{"4242424242424241", false},                   // Luhn fails
		{"42424242424", false},                        // 11 digits: too short
		{"42424242424242424242", false},               // 20 digits in one block: too long to be a card
		{"4242  4242  4242  4242", false},             // two spaces end a sequence: four short groups
		{"4242_4242_4242_4242", false},                // only space and dash join groups
		{"order #1001 on 2026-11-22, 3 items", false}, // ordinary numbers
		{"Order 1234 5678 9012", false},               // 12 digits, Luhn fails
		{"", false},
		{"4242424242424242-", true}, // a trailing separator ends the sequence
		{"-4242424242424242", true},
	} {
		t.Run(tc.text, func(t *testing.T) {
			assert.Equal(t, tc.want, httpapi.ContainsCardNumber(tc.text))
		})
	}
}

func TestRedactCardNumbers(t *testing.T) {
	assert.Equal(t, "admin", httpapi.RedactCardNumbers("admin"))
	assert.Equal(t, "n ****-****-****-**** cvv 407", httpapi.RedactCardNumbers("n 4242-4242-4242-4242 cvv 407"))
	assert.Equal(t, "**** **** **** **** 407", httpapi.RedactCardNumbers("4242 4242 4242 4242 407"))
	assert.Equal(t, "42424242424 and ****************", httpapi.RedactCardNumbers("42424242424 and 4111111111111111"))
}

// A card number sent as a member name must not come back in the answer, which lists unrecognised members.
func TestReadObjectDoesNotEchoCardNumbers(t *testing.T) {
	obj, p := httpapi.ReadObject(`{"known":"x","4111 1111 1111 1111":1}`, false)
	require.Nil(t, p)
	_, _ = obj.String("known", true)
	obj.Unknown()
	require.Len(t, obj.Errors(), 1)
	assert.Equal(t, "**** **** **** ****", obj.Errors()[0].Field)
	assert.Equal(t, "is not a recognised field", obj.Errors()[0].Message)

	_, p = httpapi.ReadObject(`{"4111111111111111":1,"4111111111111111":2}`, false)
	require.NotNil(t, p)
	assert.Contains(t, p.Detail, "appears more than once")
	assert.NotContains(t, p.Detail, "4111111111111111")
	assert.NotContains(t, p.Detail, "1111")
}

func TestLuhn(t *testing.T) {
	for _, tc := range []struct {
		digits string
		valid  bool
	}{
		{"4242424242424242", true},
		{"378282246310005", true},
		{"79927398713", true},
		{"79927398710", false},
		{"4242424242424241", false},
		{"0", true},
		{"", false},
		{"42a2", false},
		{"4242 4242 4242 4242", false}, // separators are the card-like check's business, not Luhn's
		{"4242-4242-4242-4242", false},
	} {
		assert.Equal(t, tc.valid, httpapi.Luhn(tc.digits), "%q", tc.digits)
	}
}
