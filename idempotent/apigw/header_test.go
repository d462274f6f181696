package apigw

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestHeaderValueMatchesHeader checks that reading the key straight from the event's maps gives what the built
// Header gives, for every mix of spellings, maps and repeated values.
func TestHeaderValueMatchesHeader(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	spellings := []string{"Idempotency-Key", "idempotency-key", "IDEMPOTENCY-KEY", "Idempotency-key", "Idempotency Key",
		"Idempotency-Kelvin", "X-Other", "idempotency-\u212aey"}
	values := []string{"k1", "k2", "", " k1 "}
	for i := range 5000 {
		single := map[string]string{}
		multi := map[string][]string{}
		for range rng.IntN(4) {
			single[spellings[rng.IntN(len(spellings))]] = values[rng.IntN(len(values))]
		}
		for range rng.IntN(4) {
			k := spellings[rng.IntN(len(spellings))]
			multi[k] = append(multi[k], values[rng.IntN(len(values))])
		}
		if rng.IntN(4) == 0 {
			multi = nil
		}
		for _, name := range []string{"Idempotency-Key", "idempotency-key", "X-Other", "Idempotency Key"} {
			desc := fmt.Sprintf("case %d: %q in headers %v, multiValueHeaders %v", i, name, single, multi)

			rest := &Request{single: single, multi: multi, rest: true}
			first, n := rest.headerValue(name)
			want := restHeader(single, multi).Values(name)
			assert.Equal(t, len(want), n, "REST "+desc)
			if len(want) > 0 {
				assert.Equal(t, want[0], first, "REST "+desc)
			}

			joined := &Request{single: single}
			first, n = joined.headerValue(name)
			want = joinedHeader(single).Values(name)
			assert.Equal(t, len(want), n, "joined "+desc)
			if len(want) > 0 {
				assert.Equal(t, want[0], first, "joined "+desc)
			}
		}
	}
}
