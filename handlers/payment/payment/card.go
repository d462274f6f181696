package payment

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"

	"github.com/idemkit/idemkit/handlers/internal/httpapi"
)

// Card brands as returned in the representation. Anything not recognised is "unknown", which is still charged:
// the processor, not the prefix table, decides what it accepts.
const (
	BrandVisa       = "visa"
	BrandMastercard = "mastercard"
	BrandAmex       = "amex"
	BrandDiscover   = "discover"
	BrandDiners     = "diners"
	BrandJCB        = "jcb"
	BrandUnionPay   = "unionpay"
	BrandUnknown    = "unknown"
)

// Card is a validated card as it travels from the request to the processor. It is never stored, and its String,
// GoString, Format, LogValue and MarshalJSON all redact it to brand and last four digits, so a stray log line or
// %v cannot leak the number or the CVV.
type Card struct {
	Number   string // digits only, 12-19 of them, Luhn-valid
	CVV      string // 3 or 4 digits
	ExpMonth int    // 1-12
	ExpYear  int    // four digits
}

// Brand is the card network detected from the number's prefix.
func (c Card) Brand() string { return DetectBrand(c.Number) }

// Last4 is the last four digits of the number.
func (c Card) Last4() string {
	if len(c.Number) < 4 {
		return ""
	}
	return c.Number[len(c.Number)-4:]
}

// String redacts the card.
func (c Card) String() string { return c.Brand() + " ****" + c.Last4() }

// GoString redacts the card for %#v.
func (c Card) GoString() string { return "payment.Card{" + c.String() + "}" }

// Format redacts the card for every fmt verb, %+v included.
func (c Card) Format(f fmt.State, verb rune) { _, _ = fmt.Fprint(f, c.String()) }

// LogValue redacts the card for log/slog.
func (c Card) LogValue() slog.Value {
	return slog.GroupValue(slog.String("brand", c.Brand()), slog.String("last4", c.Last4()))
}

// MarshalJSON redacts the card, should it ever be marshalled.
func (c Card) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{"brand": c.Brand(), "last4": c.Last4()})
}

// NormalizeCardNumber removes the ASCII spaces a person types between digit groups ("4242 4242 4242 4242") and
// reports whether what remains is only digits. Other separators (hyphens, dots) are rejected rather than guessed.
func NormalizeCardNumber(s string) (digits string, ok bool) {
	digits = strings.ReplaceAll(s, " ", "")
	if digits == "" {
		return "", false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return "", false
		}
	}
	return digits, true
}

// Luhn reports whether a string of digits passes the Luhn (mod 10) check. It returns false for an empty string
// or any non-digit.
func Luhn(digits string) bool { return httpapi.Luhn(digits) }

// brandRanges are issuer identification number ranges, most specific first. lo and hi are prefixes of equal
// length compared against the number's leading digits.
var brandRanges = []struct {
	lo, hi string
	brand  string
}{
	{"34", "34", BrandAmex},
	{"37", "37", BrandAmex},
	{"300", "305", BrandDiners},
	{"309", "309", BrandDiners},
	{"36", "36", BrandDiners},
	{"38", "39", BrandDiners},
	{"3528", "3589", BrandJCB},
	{"6011", "6011", BrandDiscover},
	{"644", "649", BrandDiscover},
	{"65", "65", BrandDiscover},
	{"62", "62", BrandUnionPay},
	{"81", "81", BrandUnionPay},
	{"51", "55", BrandMastercard},
	{"2221", "2720", BrandMastercard},
	{"4", "4", BrandVisa},
}

// DetectBrand names the card network of a digit string from its prefix, or BrandUnknown.
func DetectBrand(digits string) string {
	for _, r := range brandRanges {
		if len(digits) < len(r.lo) {
			continue
		}
		p := digits[:len(r.lo)]
		if p >= r.lo && p <= r.hi {
			return r.brand
		}
	}
	return BrandUnknown
}
