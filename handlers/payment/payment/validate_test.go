package payment_test

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/handlers/internal/httpapi"
	"github.com/idemkit/idemkit/handlers/payment/payment"
)

var testNow = time.Date(2026, time.November, 22, 12, 0, 0, 0, time.UTC)

// validBody is a request that passes every rule; cases edit one member at a time.
func validBody() map[string]any {
	return map[string]any{
		"amount":       2000,
		"currency":     "usd",
		"card_number":  "4242424242424242",
		"cvv":          "407",
		"expiry_month": "07",
		"expiry_year":  "2030",
		"description":  "Order #1001",
	}
}

func parse(t *testing.T, body string) (payment.CreateRequest, []httpapi.FieldError) {
	t.Helper()
	obj, p := httpapi.ReadObject(body, false)
	require.Nil(t, p, "body must parse as an object")
	return payment.ParseCreateRequest(obj, testNow)
}

func TestParseCreateRequestRules(t *testing.T) {
	const del = "<delete>"
	cases := []struct {
		name  string
		field string
		value any // del removes the member; json.RawMessage is sent as is
		want  string
	}{
		{"amount missing", "amount", del, "is required"},
		{"amount null", "amount", nil, "is required"},
		{"amount zero", "amount", 0, "between 1 and 99999999"},
		{"amount negative", "amount", -5, "between 1 and 99999999"},
		{"amount too large", "amount", 100000000, "between 1 and 99999999"},
		{"amount beyond int64", "amount", json.RawMessage("123456789012345678901234567890"), "between 1 and 99999999"},
		{"amount fraction", "amount", json.RawMessage("20.5"), "without a fraction or exponent"},
		{"amount written as float", "amount", json.RawMessage("2000.0"), "without a fraction or exponent"},
		{"amount exponent", "amount", json.RawMessage("2e3"), "without a fraction or exponent"},
		{"amount string", "amount", "2000", "must be an integer, not a string"},
		{"amount boolean", "amount", true, "must be an integer, not a boolean"},
		{"amount object", "amount", map[string]any{"value": 1}, "must be an integer, not an object"},

		{"currency missing", "currency", del, "is required"},
		{"currency two letters", "currency", "us", "three-letter ISO 4217"},
		{"currency four letters", "currency", "usdd", "three-letter ISO 4217"},
		{"currency digits", "currency", "840", "three-letter ISO 4217"},
		{"currency number", "currency", 840, "must be a string, not a number"},
		{"currency not a currency", "currency", "abc", "not an active ISO 4217"},
		{"currency withdrawn", "currency", "hrk", "not an active ISO 4217"},
		{"currency precious metal", "currency", "xau", "not an active ISO 4217"},
		{"currency test code", "currency", "XTS", "not an active ISO 4217"},
		{"currency non-ASCII", "currency", "üsd", "three-letter ISO 4217"},

		{"card missing", "card_number", del, "is required"},
		{"card number as JSON number", "card_number", json.RawMessage("4242424242424242"), "must be a string, not a number"},
		{"card hyphens", "card_number", "4242-4242-4242-4242", "only digits"},
		{"card letters", "card_number", "4242abcd42424242", "only digits"},
		{"card empty", "card_number", "", "only digits"},
		{"card only spaces", "card_number", "    ", "only digits"},
		{"card 11 digits", "card_number", "42424242426", "12 to 19 digits"},
		{"card 20 digits", "card_number", "42424242424242424242", "12 to 19 digits"},
		{"card Luhn", "card_number", "4242424242424241", "Luhn"},

		{"cvv missing", "cvv", del, "is required"},
		{"cvv two digits", "cvv", "12", "3 or 4 digits"},
		{"cvv five digits", "cvv", "12345", "3 or 4 digits"},
		{"cvv letters", "cvv", "12a", "3 or 4 digits"},
		{"cvv number", "cvv", 407, "must be a string, not a number"},

		{"month missing", "expiry_month", del, "is required"},
		{"month one digit", "expiry_month", "7", "two digits from 01 to 12"},
		{"month 00", "expiry_month", "00", "two digits from 01 to 12"},
		{"month 13", "expiry_month", "13", "two digits from 01 to 12"},
		{"month number", "expiry_month", 7, "must be a string, not a number"},

		{"year missing", "expiry_year", del, "is required"},
		{"year two digits", "expiry_year", "30", "four digits"},
		{"year five digits", "expiry_year", "20300", "four digits"},
		{"year number", "expiry_year", 2030, "must be a string, not a number"},
		{"year past", "expiry_year", "2025", "in the past"},
		{"year too far", "expiry_year", "2047", "more than 20 years"},

		{"description number", "description", 5, "must be a string, not a number"},
		{"description too long", "description", strings.Repeat("x", 501), "at most 500 characters"},
		{"description control", "description", "line\nbreak", "control characters"},
		{"description NUL", "description", "nul\x00", "control characters"},
		{"description holds a card number", "description", "card 4242 4242 4242 4242 cvv 407 exp 07/30", "must not contain a card number"},
		{"description holds a dashed card number", "description", "4000-0000-0000-0002", "must not contain a card number"},

		{"unknown member", "descripton", "typo", "is not a recognised field"},
		{"card data nested", "card", map[string]any{"number": "4242424242424242"}, "is not a recognised field"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := validBody()
			if s, ok := tc.value.(string); ok && s == del {
				delete(body, tc.field)
			} else {
				body[tc.field] = tc.value
			}
			b, err := json.Marshal(body)
			require.NoError(t, err)
			_, errs := parse(t, string(b))
			require.Len(t, errs, 1, "exactly one error expected, got %v", errs)
			assert.Equal(t, tc.field, errs[0].Field)
			assert.Contains(t, errs[0].Message, tc.want)
			if tc.field == "card_number" || tc.field == "cvv" || tc.field == "description" {
				if s, ok := tc.value.(string); ok && s != "" && s != del {
					assert.NotContains(t, errs[0].Message, s, "messages must not echo card data")
				}
			}
		})
	}
}

func TestParseCreateRequestExpiryBoundaries(t *testing.T) {
	cases := []struct {
		month, year string
		field       string // "" = valid
	}{
		{"11", "2026", ""},             // the current month is still valid
		{"10", "2026", "expiry_month"}, // last month has expired
		{"12", "2026", ""},
		{"01", "2027", ""},
		{"12", "2025", "expiry_year"},
		{"12", "2046", ""}, // exactly 20 years ahead
		{"01", "2047", "expiry_year"},
	}
	for _, tc := range cases {
		t.Run(tc.month+"/"+tc.year, func(t *testing.T) {
			body := validBody()
			body["expiry_month"], body["expiry_year"] = tc.month, tc.year
			b, _ := json.Marshal(body)
			req, errs := parse(t, string(b))
			if tc.field == "" {
				require.Empty(t, errs)
				assert.Equal(t, tc.year, strconv.Itoa(req.Card.ExpYear))
				return
			}
			require.Len(t, errs, 1)
			assert.Equal(t, tc.field, errs[0].Field)
		})
	}
}

func TestParseCreateRequestNormalises(t *testing.T) {
	body := validBody()
	body["currency"] = "EUR"
	body["card_number"] = "4242 4242 4242 4242"
	body["description"] = "  padded  "
	body["cvv"] = "1234"
	b, _ := json.Marshal(body)
	req, errs := parse(t, string(b))
	require.Empty(t, errs)
	assert.Equal(t, int64(2000), req.Amount)
	assert.Equal(t, "eur", req.Currency, "currency is stored lower-case")
	assert.Equal(t, "4242424242424242", req.Card.Number, "spaces between groups are removed")
	assert.Equal(t, "1234", req.Card.CVV)
	assert.Equal(t, 7, req.Card.ExpMonth)
	assert.Equal(t, 2030, req.Card.ExpYear)
	assert.Equal(t, "padded", req.Description)
}

func TestParseCreateRequestBounds(t *testing.T) {
	for _, tc := range []struct {
		name  string
		field string
		value any
	}{
		{"amount 1", "amount", 1},
		{"amount max", "amount", 99999999},
		{"description 500 characters", "description", strings.Repeat("é", 500)},
		{"description empty means absent", "description", ""},
		{"description null means absent", "description", nil},
		{"12-digit card", "card_number", "424242424242"}, // Luhn-valid 12 digits
		{"19-digit card", "card_number", "4242424242424242428"},
		{"amex", "card_number", "378282246310005"},
		{"jpy", "currency", "jpy"},
		{"caribbean guilder", "currency", "XCG"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := validBody()
			body[tc.field] = tc.value
			b, _ := json.Marshal(body)
			_, errs := parse(t, string(b))
			assert.Empty(t, errs)
		})
	}
}

func TestParseCreateRequestReportsEveryField(t *testing.T) {
	_, errs := parse(t, `{"amount":"x","currency":1,"cvv":"1","expiry_month":"13","expiry_year":"1","zzz":1,"aaa":2}`)
	fields := make([]string, 0, len(errs))
	for _, e := range errs {
		fields = append(fields, e.Field)
	}
	assert.Equal(t, []string{"amount", "currency", "card_number", "cvv", "expiry_month", "expiry_year", "aaa", "zzz"}, fields)
}

func TestLuhn(t *testing.T) {
	for _, tc := range []struct {
		digits string
		valid  bool
	}{
		{"4242424242424242", true},
		{"4000000000000002", true},
		{"5555555555554444", true},
		{"378282246310005", true},
		{"79927398713", true},
		{"79927398710", false},
		{"4242424242424241", false},
		{"0", true},
		{"", false},
		{"42a2", false},
	} {
		assert.Equal(t, tc.valid, payment.Luhn(tc.digits), tc.digits)
	}
}

func TestDetectBrand(t *testing.T) {
	for _, tc := range []struct{ number, brand string }{
		{"4242424242424242", payment.BrandVisa},
		{"4000056655665556", payment.BrandVisa},
		{"5555555555554444", payment.BrandMastercard},
		{"2223003122003222", payment.BrandMastercard},
		{"2720990000000007", payment.BrandMastercard},
		{"2721000000000004", payment.BrandUnknown},
		{"378282246310005", payment.BrandAmex},
		{"371449635398431", payment.BrandAmex},
		{"6011111111111117", payment.BrandDiscover},
		{"6445644564456445", payment.BrandDiscover},
		{"6500000000000002", payment.BrandDiscover},
		{"3056930009020004", payment.BrandDiners},
		{"36227206271667", payment.BrandDiners},
		{"3566002020360505", payment.BrandJCB},
		{"6200000000000005", payment.BrandUnionPay},
		{"1234567812345670", payment.BrandUnknown},
		{"", payment.BrandUnknown},
	} {
		assert.Equal(t, tc.brand, payment.DetectBrand(tc.number), tc.number)
	}
}

func TestNormalizeCardNumber(t *testing.T) {
	for _, tc := range []struct {
		in, out string
		ok      bool
	}{
		{"4242424242424242", "4242424242424242", true},
		{"4242 4242 4242 4242", "4242424242424242", true},
		{" 4242424242424242 ", "4242424242424242", true},
		{"4242-4242-4242-4242", "", false},
		{"4242\t4242", "", false},
		{"４２４２", "", false}, // full-width digits are not ASCII digits
		{"", "", false},
	} {
		out, ok := payment.NormalizeCardNumber(tc.in)
		assert.Equal(t, tc.ok, ok, tc.in)
		assert.Equal(t, tc.out, out, tc.in)
	}
}

func TestActiveCurrencies(t *testing.T) {
	for _, c := range []string{"usd", "eur", "gbp", "jpy", "chf", "inr", "brl", "zwg", "ved", "sle"} {
		assert.True(t, payment.IsActiveCurrency(c), c)
	}
	for _, c := range []string{"USD", "xxx", "xts", "xau", "bov", "hrk", "zwl", "ang", "bgn", "sll", "cuc", "dem"} {
		assert.False(t, payment.IsActiveCurrency(c), c)
	}
}
