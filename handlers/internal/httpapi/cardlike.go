package httpapi

// Card numbers (PANs) have 12 to 19 digits and end in a Luhn check digit. Card data must never be stored, logged or
// returned, and a free-text field is where a customer or a careless client puts it ("card 4242 4242 4242 4242").
const (
	minCardDigits = 12
	maxCardDigits = 19
)

// CardLikeMessage is the field error for free text that looks like it holds a card number. It does not repeat the
// text, so the number does not come back in the response either.
const CardLikeMessage = "must not contain a card number (12 to 19 digits, with or without spaces or dashes, that pass " +
	"the Luhn check); send card data only in the card fields"

// ContainsCardNumber reports whether s holds something that looks like a card number: a run of 12 to 19 digits
// that passes the Luhn check, written as one block or in groups separated by a single space or dash
// ("4242424242424242", "4242 4242 4242 4242", "3782-822463-10005"). Within a longer sequence of groups, any run
// of whole consecutive groups counts, so "4242 4242 4242 4242 407" (a card number and its CVV) is caught.
// Digits inside one group are never split: a 25-digit reference is not a card number, which keeps long order
// numbers from being refused by chance (a random digit string passes the Luhn check one time in ten).
func ContainsCardNumber(s string) bool {
	found := false
	forEachCardRun(s, func(int, int) bool { found = true; return false })
	return found
}

// RedactCardNumbers returns s with every digit of every card-like run (as ContainsCardNumber finds them) replaced
// by '*', so that text which must be shown, such as an unrecognised member name, cannot carry a card number.
func RedactCardNumbers(s string) string {
	if !ContainsCardNumber(s) {
		return s
	}
	b := []byte(s)
	forEachCardRun(s, func(start, end int) bool {
		for i := start; i < end; i++ {
			if isDigit(b[i]) {
				b[i] = '*'
			}
		}
		return true
	})
	return string(b)
}

// forEachCardRun calls fn with the byte range [start, end) of each card-like run of s, until fn returns false.
// Runs may overlap.
func forEachCardRun(s string, fn func(start, end int) bool) {
	type group struct{ start, end int } // byte offsets of a block of digits
	var groups []group
	flush := func() bool {
		for i := range groups {
			n := 0
			for j := i; j < len(groups); j++ {
				n += groups[j].end - groups[j].start
				if n > maxCardDigits {
					break
				}
				if n >= minCardDigits && luhnDigits(s, groups[i].start, groups[j].end) && !fn(groups[i].start, groups[j].end) {
					return false
				}
			}
		}
		groups = groups[:0]
		return true
	}
	for i := 0; i < len(s); {
		if !isDigit(s[i]) {
			i++
			continue
		}
		start := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		groups = append(groups, group{start, i})
		// A single space or dash followed by a digit continues the sequence; anything else ends it.
		if i+1 < len(s) && (s[i] == ' ' || s[i] == '-') && isDigit(s[i+1]) {
			i++
			continue
		}
		if !flush() {
			return
		}
	}
	flush()
}

// Luhn reports whether digits, a string of ASCII digits, passes the Luhn (mod 10) check. It returns false for an
// empty string or any non-digit. It is the one Luhn routine of the handlers: the payment service's card validation
// and the card-like text check here both use it.
func Luhn(digits string) bool {
	if digits == "" {
		return false
	}
	for i := 0; i < len(digits); i++ {
		if !isDigit(digits[i]) {
			return false
		}
	}
	return luhnDigits(digits, 0, len(digits))
}

// luhnDigits runs the Luhn check over the digits of s[start:end], skipping separators.
func luhnDigits(s string, start, end int) bool {
	sum, double := 0, false
	for i := end - 1; i >= start; i-- {
		if !isDigit(s[i]) {
			continue
		}
		d := int(s[i] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
