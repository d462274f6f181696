package e2e

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Card numbers the card-data tests put where no card number belongs, in the groupings they use. With the
// test cards of the other tests, none may appear in any table or in the functions' logs, in any grouping.
var freeTextCards = []string{"4111111111111111", "5555555555554444", "378282246310005"}

// TestCardDataInFreeText: free text that holds a card number, in any grouping, is refused with a 400 that does
// not repeat it, in every function; a member name that is a card number is not echoed. Nothing of it is stored
// (the final scan) or logged (the final log scan).
func TestCardDataInFreeText(t *testing.T) {
	paymentCases := []struct{ name, body string }{
		{"description with a spaced card number", paymentBody(2000, cardVisa, "card 4111 1111 1111 1111 cvv 407 exp 07/30")},
		{"description with a dashed card number", paymentBody(2000, cardVisa, "5555-5555-5555-4444")},
		{"description with an amex number", paymentBody(2000, cardVisa, "pay 378282246310005 please")},
		{"member name is a card number", strings.Replace(paymentBody(2000, cardVisa, "x"), `"description"`, `"4111 1111 1111 1111"`, 1)},
	}
	for _, tc := range paymentCases {
		t.Run("payments/"+tc.name, func(t *testing.T) {
			r := request(t, http.MethodPost, "/payments", withKey(newKey(t)), tc.body)
			assertProblem(t, r, http.StatusBadRequest)
			assertNoCardIn(t, string(r.Body))
		})
	}
	userCases := []struct{ name, body string }{
		{"name is a card number", userBody("4111 1111 1111 1111", uniqueEmail(t))},
		{"name holds a dashed card number", userBody("Alice 5555-5555-5555-4444", uniqueEmail(t))},
		{"e-mail holds a card number", userBody("Alice", "4111111111111111@example.com")},
		{"member name is a card number", `{"name":"Alice","email":"` + uniqueEmail(t) + `","378282246310005":1}`},
	}
	for _, tc := range userCases {
		t.Run("users/"+tc.name, func(t *testing.T) {
			r := request(t, http.MethodPost, "/users", withKey(newKey(t)), tc.body)
			assertProblem(t, r, http.StatusBadRequest)
			assertNoCardIn(t, string(r.Body))
		})
	}
}

func assertNoCardIn(t *testing.T, text string) {
	t.Helper()
	for _, c := range append([]string{cardVisa, cardDeclined}, freeTextCards...) {
		assert.False(t, cardPattern(c).MatchString(text), "the answer repeats the card number %s: %s", c, text)
	}
}

var (
	cardPatternsMu sync.Mutex
	cardPatterns   = map[string]*regexp.Regexp{}
)

// cardPattern matches the card number with or without one space or dash between any two digits.
func cardPattern(card string) *regexp.Regexp {
	cardPatternsMu.Lock()
	defer cardPatternsMu.Unlock()
	if re, ok := cardPatterns[card]; ok {
		return re
	}
	parts := strings.Split(card, "")
	re := regexp.MustCompile(strings.Join(parts, `[ -]?`))
	cardPatterns[card] = re
	return re
}

// cardsInLog lists the test card numbers found in the functions' and the runner's output, in any grouping.
func cardsInLog(log string) []string {
	var found []string
	for _, c := range append([]string{cardVisa, cardDeclined}, freeTextCards...) {
		if loc := cardPattern(c).FindStringIndex(log); loc != nil {
			found = append(found, fmt.Sprintf("the card number %s at byte %d", c, loc[0]))
		}
	}
	return found
}

// sdkWarnings lists the AWS SDK's warnings in the output: its own "SDK <date> WARN" lines, and the checksum
// warning in any format (aws-sdk-go-v2#3545: one per duplicate or mismatch).
func sdkWarnings(log string) []string {
	var found []string
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "SDK ") && strings.Contains(line, " WARN ") ||
			strings.Contains(line, "failed to close HTTP response body") {
			found = append(found, line)
		}
	}
	return found
}

// TestDuplicatesLogNoSDKWarning: duplicates, mismatches and an e-mail conflict, each answered from a failed
// DynamoDB condition (an error response without a checksum header), log no SDK warning.
func TestDuplicatesLogNoSDKWarning(t *testing.T) {
	before := len(runnerOutput.String())
	key := newKey(t)
	body := paymentBody(2000, cardVisa, "no warnings")
	require.Equal(t, http.StatusCreated, request(t, http.MethodPost, "/payments", withKey(key), body).Status)
	// Concurrent copies meet the claim in DynamoDB whichever instance they land on.
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = doRequest(http.MethodPost, "/payments", withKey(key), body)
			_, _ = doRequest(http.MethodPost, "/payments", withKey(key), paymentBody(2001, cardVisa, "no warnings"))
		}()
	}
	wg.Wait()
	email := uniqueEmail(t)
	require.Equal(t, http.StatusCreated, request(t, http.MethodPost, "/users", nil, userBody("Alice", email)).Status)
	assertProblem(t, request(t, http.MethodPost, "/users", nil, userBody("Alice", email)), http.StatusConflict)

	out := runnerOutput.String()[before:]
	assert.Empty(t, sdkWarnings(out), "the AWS SDK warned while duplicates were answered")
}

// TestCardScanners keeps the log and table scans honest: they must see a card number where one is.
func TestCardScanners(t *testing.T) {
	assert.NotEmpty(t, cardsInLog(`{"msg":"x","description":"4111 1111-1111 1111"}`))
	assert.NotEmpty(t, cardsInLog("card=4242424242424242"))
	assert.Empty(t, cardsInLog(`{"card":{"brand":"visa","last4":"4242"},"Timestamp":1764722000000}`))
	assert.NotEmpty(t, sdkWarnings("SDK 2026/12/03 00:00:00 WARN failed to close HTTP response body, this may affect connection reuse"))
	assert.NotEmpty(t, sdkWarnings(`{"level":"WARN","message":"failed to close HTTP response body, this may affect connection reuse"}`))
	assert.Empty(t, sdkWarnings(`{"level":"INFO","message":"payment created"}`))

	for _, tc := range []struct {
		value string
		want  bool
	}{
		{"note 4111 1111 1111 1111", true},
		{"5555-5555-5555-4444 and more", true},
		{"378282246310005", true},
		{"123456789012", false},                          // 12 digits that fail the Luhn check
		{"a1b2" + strings.Repeat("4", 15) + "2f", false}, // digits inside a hex token are no card number
		{"pay_4qht3v6f7ltawljrqvffgegfkq", false},
	} {
		assert.Equal(t, tc.want, storedCardLike(&types.AttributeValueMemberS{Value: tc.value}) != "", tc.value)
	}
	assert.Empty(t, storedCardLike(&types.AttributeValueMemberN{Value: "4111111111111111"}), "numbers (epochs) are not text")
}

// storedCardLike describes a card-like run in the text of a stored value (strings and binaries, not numbers):
// 12 to 19 digits, single spaces or dashes allowed between them, passing the Luhn check, standing alone rather
// than inside a longer token of letters and digits (hashes and ids hold digit runs by chance). It is written
// independently of the service's detector, and is stricter: any window of 12-19 digits of a run counts.
func storedCardLike(av types.AttributeValue) string {
	for _, text := range textOf(av) {
		for _, m := range digitRun.FindAllStringSubmatchIndex(text, -1) {
			run := text[m[2]:m[3]]
			var digits []byte
			for i := 0; i < len(run); i++ {
				if run[i] >= '0' && run[i] <= '9' {
					digits = append(digits, run[i])
				}
			}
			for n := 12; n <= 19; n++ {
				for i := 0; i+n <= len(digits); i++ {
					if luhnValid(digits[i : i+n]) {
						return fmt.Sprintf("a card-like number (%d digits ending in %s)", n, digits[i+n-4:i+n])
					}
				}
			}
		}
	}
	return ""
}

var digitRun = regexp.MustCompile(`(?:^|[^0-9A-Za-z])([0-9](?:[ -]?[0-9]){11,})(?:$|[^0-9A-Za-z])`)

func luhnValid(d []byte) bool {
	sum := 0
	for i := len(d) - 1; i >= 0; i-- {
		v := int(d[i] - '0')
		if (len(d)-1-i)%2 == 1 {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
	}
	return sum%10 == 0
}

// textOf is flatten without numbers.
func textOf(av types.AttributeValue) []string {
	switch v := av.(type) {
	case *types.AttributeValueMemberN, *types.AttributeValueMemberNS:
		return nil
	case *types.AttributeValueMemberL:
		var out []string
		for _, e := range v.Value {
			out = append(out, textOf(e)...)
		}
		return out
	case *types.AttributeValueMemberM:
		var out []string
		for k, e := range v.Value {
			out = append(out, k)
			out = append(out, textOf(e)...)
		}
		return out
	}
	return flatten(av)
}
