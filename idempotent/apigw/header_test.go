package apigw

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestHeaderValueMatchesHeader checks that reading a header straight from the event's maps gives what the built
// Header gives, for every mix of spellings, maps and repeated values.
func TestHeaderValueMatchesHeader(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	spellings := []string{"Idempotency-Key", "idempotency-key", "IDEMPOTENCY-KEY", "Idempotency-key", "Idempotency Key",
		"Idempotency-Kelvin", "X-Other", "idempotency-\u212aey", ""}
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

			rest := &eventHeaders{single: single, multi: multi, rest: true}
			assert.Equal(t, restHeader(single, multi).Values(name), rest.Values(name), "REST "+desc)
			assert.Equal(t, restHeader(single, multi), rest.Header(), "REST "+desc)

			joined := &eventHeaders{single: single}
			assert.Equal(t, joinedHeader(single).Values(name), joined.Values(name), "joined "+desc)
			assert.Equal(t, joinedHeader(single), joined.Header(), "joined "+desc)
		}
	}
}
