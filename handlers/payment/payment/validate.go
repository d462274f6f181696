package payment

import (
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/idemkit/idemkit/handlers/internal/httpapi"
)

// Limits of the request rules.
const (
	MinAmount = 1
	MaxAmount = 99_999_999
	// MaxDescriptionLen bounds the description in characters (Unicode code points); it is stored and returned,
	// so it stays far below DynamoDB's item size while leaving room for an order reference and a note.
	MaxDescriptionLen = 500
	// MaxExpiryYears is how far in the future an expiry year may lie; cards are issued for at most a few years,
	// so a later year is a typo.
	MaxExpiryYears = 20
)

// CreateRequest is a validated POST /payments body.
type CreateRequest struct {
	Amount      int64  // minor units, MinAmount..MaxAmount
	Currency    string // lower-case active ISO 4217 code
	Card        Card
	Description string // trimmed; "" when absent
}

var (
	threeLetters = regexp.MustCompile(`^[A-Za-z]{3}$`)
	cvvDigits    = regexp.MustCompile(`^[0-9]{3,4}$`)
	monthDigits  = regexp.MustCompile(`^(0[1-9]|1[0-2])$`)
	yearDigits   = regexp.MustCompile(`^[0-9]{4}$`)
)

// ParseCreateRequest validates a POST /payments body against every rule and returns either the request or the
// complete list of field errors. now is the clock reading that decides whether the expiry lies in the past; the
// card is usable through the last day of its expiry month (UTC).
//
// Messages never repeat the submitted value, so neither the card number nor the CVV can come back in a response.
func ParseCreateRequest(obj *httpapi.Object, now time.Time) (CreateRequest, []httpapi.FieldError) {
	var req CreateRequest

	if amount, ok := obj.Int("amount", true); ok {
		if amount < MinAmount || amount > MaxAmount {
			obj.Fail("amount", fmt.Sprintf("must be an integer number of minor units between %d and %d", MinAmount, MaxAmount))
		}
		req.Amount = amount
	}

	if cur, ok := obj.String("currency", true); ok {
		switch {
		case !threeLetters.MatchString(cur):
			obj.Fail("currency", "must be a three-letter ISO 4217 currency code, e.g. \"usd\"")
		case !IsActiveCurrency(strings.ToLower(cur)):
			obj.Fail("currency", "is not an active ISO 4217 currency code")
		default:
			req.Currency = strings.ToLower(cur)
		}
	}

	if num, ok := obj.String("card_number", true); ok {
		digits, ok := NormalizeCardNumber(num)
		switch {
		case !ok:
			obj.Fail("card_number", "must contain only digits (spaces between digit groups are allowed)")
		case len(digits) < 12 || len(digits) > 19:
			obj.Fail("card_number", "must have 12 to 19 digits")
		case !Luhn(digits):
			obj.Fail("card_number", "is not a valid card number (the Luhn check digit does not match)")
		default:
			req.Card.Number = digits
		}
	}

	if cvv, ok := obj.String("cvv", true); ok {
		if !cvvDigits.MatchString(cvv) {
			obj.Fail("cvv", "must be 3 or 4 digits")
		} else {
			req.Card.CVV = cvv
		}
	}

	month, monthOK := obj.String("expiry_month", true)
	if monthOK && !monthDigits.MatchString(month) {
		obj.Fail("expiry_month", "must be two digits from 01 to 12")
		monthOK = false
	}
	year, yearOK := obj.String("expiry_year", true)
	if yearOK && !yearDigits.MatchString(year) {
		obj.Fail("expiry_year", "must be four digits, e.g. \"2030\"")
		yearOK = false
	}
	if monthOK && yearOK {
		m, y := atoi(month), atoi(year)
		now = now.UTC()
		cy, cm := now.Year(), int(now.Month())
		switch {
		case y < cy:
			obj.Fail("expiry_year", "is in the past: the card has expired")
		case y == cy && m < cm:
			obj.Fail("expiry_month", "is in the past: the card has expired")
		case y > cy+MaxExpiryYears:
			obj.Fail("expiry_year", fmt.Sprintf("is more than %d years in the future", MaxExpiryYears))
		default:
			req.Card.ExpMonth, req.Card.ExpYear = m, y
		}
	}

	if desc, ok := obj.String("description", false); ok {
		desc = strings.TrimSpace(desc)
		switch {
		case utf8.RuneCountInString(desc) > MaxDescriptionLen:
			obj.Fail("description", fmt.Sprintf("must be at most %d characters", MaxDescriptionLen))
		case strings.IndexFunc(desc, unicode.IsControl) >= 0:
			obj.Fail("description", "must not contain control characters (line breaks, tabs, ...)")
		case strings.ContainsRune(desc, utf8.RuneError):
			obj.Fail("description", invalidUTF8)
		case httpapi.ContainsCardNumber(desc):
			// The description is stored, returned and replayed for the record's retention: card data must go in
			// the card fields, which are never kept.
			obj.Fail("description", httpapi.CardLikeMessage)
		default:
			req.Description = desc
		}
	}

	obj.Unknown()
	if errs := obj.Errors(); len(errs) > 0 {
		return CreateRequest{}, errs
	}
	return req, nil
}

// invalidUTF8 refuses text holding U+FFFD. encoding/json turns every byte that is not UTF-8 into that replacement
// character, so it is how a body in another encoding (Latin-1 "caf\xe9") shows after decoding: accepting it
// would store and return text the client never sent.
const invalidUTF8 = "must be UTF-8 text: it contains bytes that are not UTF-8 (or U+FFFD, the character that replaces them)"

// atoi parses a string already checked to be ASCII digits.
func atoi(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}
