package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
)

// The tables template.yaml declares (the runner names them after their logical IDs, CONTRACT §4); ProcessorTable
// is the simulated card processor's record of charges.
var allTables = []string{"IdempotencyTable", "PaymentsTable", "UsersTable", "ProcessorTable"}

const (
	// Card data the tests and the sample events send; none of it may ever be stored (CONTRACT §3).
	cardVisa     = "4242424242424242"
	cardDeclined = "4000000000000002"
	cvvHTTP      = "8531" // the CVV of every HTTP test's payment body
	cvvEvents    = "407"  // the CVV in events/*.json
)

type secretSet struct {
	substrings []string // must not occur anywhere in a stored string (card numbers, raw keys)
	exact      []string // must not be a stored value, nor appear quoted inside one (CVVs: short digit strings)
}

// secretsToFind is the card data plus every raw idempotency key sent so far plus extra keys.
func secretsToFind(extraKeys ...string) secretSet {
	s := secretSet{substrings: []string{cardVisa, cardDeclined}, exact: []string{cvvHTTP, cvvEvents}}
	keysMu.Lock()
	for k := range keysSent {
		s.substrings = append(s.substrings, k)
	}
	keysMu.Unlock()
	for _, k := range extraKeys {
		if k != "" {
			s.substrings = append(s.substrings, k)
		}
	}
	return s
}

// scanAll returns every item of a table (Scan is fine on a test database).
func scanAll(ctx context.Context, db *dynamodb.Client, table string) ([]map[string]types.AttributeValue, error) {
	var items []map[string]types.AttributeValue
	p := dynamodb.NewScanPaginator(db, &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("scan %s: %w", table, err)
		}
		items = append(items, page.Items...)
	}
	return items, nil
}

// findSecrets scans every table and describes every stored value that holds one of the secrets.
func findSecrets(ctx context.Context, s secretSet) ([]string, error) {
	db := dynamoClient()
	var leaks []string
	for _, table := range allTables {
		items, err := scanAll(ctx, db, table)
		if err != nil {
			return nil, err
		}
		for i, it := range items {
			names := make([]string, 0, len(it))
			for n := range it {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				if cardFieldName(n) {
					leaks = append(leaks, fmt.Sprintf("%s item %d has a card attribute %q", table, i, n))
				}
				if what := storedCardLike(it[n]); what != "" {
					leaks = append(leaks, fmt.Sprintf("%s item %d attribute %q holds %s", table, i, n, what))
				}
				for _, v := range flatten(it[n]) {
					if what := leak(v, s); what != "" {
						leaks = append(leaks, fmt.Sprintf("%s item %d attribute %q holds %s", table, i, n, what))
					}
				}
			}
		}
	}
	return leaks, nil
}

func leak(v string, s secretSet) string {
	for _, sub := range s.substrings {
		if strings.Contains(v, sub) {
			return fmt.Sprintf("the secret %q", sub)
		}
	}
	for _, e := range s.exact {
		if v == e || strings.Contains(v, `"`+e+`"`) {
			return fmt.Sprintf("the CVV %q", e)
		}
	}
	// A card field appears as a JSON member name inside a stored document. Matching the quoted name only keeps
	// random ids ("pay_gn2yzd6lspcvv6...") from counting as leaks.
	lower := strings.ToLower(v)
	for _, name := range cardFields {
		if strings.Contains(lower, `"`+name+`"`) {
			return fmt.Sprintf("a card field name (%s)", name)
		}
	}
	return ""
}

// cardFields are the request's card member names; none may be stored, as an attribute or inside a document.
var cardFields = []string{"cvv", "card_number"}

func cardFieldName(attr string) bool {
	for _, name := range cardFields {
		if strings.EqualFold(attr, name) {
			return true
		}
	}
	return false
}

// flatten gives every scalar inside an attribute value as text; gzip-compressed binaries are decompressed.
func flatten(av types.AttributeValue) []string {
	switch v := av.(type) {
	case *types.AttributeValueMemberS:
		return []string{v.Value}
	case *types.AttributeValueMemberN:
		return []string{v.Value}
	case *types.AttributeValueMemberB:
		return []string{binaryText(v.Value)}
	case *types.AttributeValueMemberSS:
		return v.Value
	case *types.AttributeValueMemberNS:
		return v.Value
	case *types.AttributeValueMemberBS:
		var out []string
		for _, b := range v.Value {
			out = append(out, binaryText(b))
		}
		return out
	case *types.AttributeValueMemberL:
		var out []string
		for _, e := range v.Value {
			out = append(out, flatten(e)...)
		}
		return out
	case *types.AttributeValueMemberM:
		var out []string
		for k, e := range v.Value {
			out = append(out, k)
			out = append(out, flatten(e)...)
		}
		return out
	}
	return nil
}

func binaryText(b []byte) string {
	if len(b) > 2 && b[0] == 0x1f && b[1] == 0x8b {
		if zr, err := gzip.NewReader(bytes.NewReader(b)); err == nil {
			if raw, err := io.ReadAll(zr); err == nil {
				return string(raw)
			}
		}
	}
	return string(b)
}

// TestLeakDetector keeps the stored-data checks honest: they must see a secret where one is.
func TestLeakDetector(t *testing.T) {
	s := secretSet{substrings: []string{cardVisa, "e2e-0123456789abcdef"}, exact: []string{cvvHTTP}}
	gz := func(text string) []byte {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		_, _ = zw.Write([]byte(text))
		_ = zw.Close()
		return b.Bytes()
	}
	tests := []struct {
		name  string
		value types.AttributeValue
		leaks bool
	}{
		{"card number in a recorded response", &types.AttributeValueMemberS{Value: `{"body":"` + cardVisa + `"}`}, true},
		{"raw key as a partition key", &types.AttributeValueMemberS{Value: "x#e2e-0123456789abcdef"}, true},
		{"CVV as a value", &types.AttributeValueMemberS{Value: cvvHTTP}, true},
		{"CVV quoted in JSON", &types.AttributeValueMemberS{Value: `{"x":"` + cvvHTTP + `"}`}, true},
		{"cvv field name", &types.AttributeValueMemberS{Value: `{"cvv":"1"}`}, true},
		{"card number field name in upper case", &types.AttributeValueMemberS{Value: `{"Card_Number":"x"}`}, true},
		{"random id that happens to contain cvv", &types.AttributeValueMemberS{Value: "pay_gn2yzd6lspcvv6xe6ynnxx2vse"}, false},
		{"card number in a gzip binary", &types.AttributeValueMemberB{Value: gz(cardVisa)}, true},
		{"card number in a nested map", &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
			"l": &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberS{Value: cardVisa}}}}}, true},
		{"last4 and brand", &types.AttributeValueMemberS{Value: `{"brand":"visa","last4":"4242"}`}, false},
		{"epoch number containing the CVV digits", &types.AttributeValueMemberN{Value: "17953" + cvvHTTP + "1"}, false},
		{"hash containing the CVV digits", &types.AttributeValueMemberS{Value: "ab" + cvvHTTP + "cd"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var found bool
			for _, v := range flatten(tc.value) {
				found = found || leak(v, s) != ""
			}
			assert.Equal(t, tc.leaks, found)
		})
	}
}
