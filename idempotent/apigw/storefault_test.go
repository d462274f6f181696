package apigw

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/idempotent"
)

// faultStore fails claims with claimErr and completions carrying effects with completeErr, when set.
type faultStore struct {
	*flakyStore
	claimErr, completeErr error
}

func (s faultStore) Claim(ctx context.Context, c idempotent.Claim) (*idempotent.Record, error) {
	if s.claimErr != nil {
		return nil, s.claimErr
	}
	return s.flakyStore.Claim(ctx, c)
}

func (s faultStore) Complete(ctx context.Context, rec idempotent.Record, effects []idempotent.Effect) error {
	if s.completeErr != nil && len(effects) > 0 {
		return s.completeErr
	}
	return s.flakyStore.Complete(ctx, rec, effects)
}

// TestStoreFaultAnswers: a transient store fault is 503 with Retry-After, a permanent one 500 without; before the
// handler ran the answer says the request was not processed, after it the answer never claims that nothing
// changed, because a completion whose answer was lost or late may have committed, and the handler may have acted
// outside the store.
func TestStoreFaultAnswers(t *testing.T) {
	transient := fmt.Errorf("read: connection reset by peer")
	permanent := fmt.Errorf("ResourceNotFoundException: %w", idempotent.ErrPermanent)
	tests := []struct {
		name                  string
		claimErr, completeErr error
		status                int
		problem, retryAfter   string
		detail                string
		runs                  int
	}{
		{"claim, transient", transient, nil, http.StatusServiceUnavailable, "store-unavailable", "2", "was not run", 0},
		{"claim, permanent", permanent, nil, http.StatusInternalServerError, "store-rejected", "", "was not processed", 0},
		{"completion, transient: outcome unknown", nil, transient, http.StatusServiceUnavailable, "store-unavailable", "2", "whether it took effect is unknown", 1},
		{"completion, permanent", nil, permanent, http.StatusInternalServerError, "store-rejected", "", "outcome could not be recorded", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t)
			e := idempotent.New(faultStore{env.store, tc.claimErr, tc.completeErr}, idempotent.WithClock(env.clock),
				idempotent.WithDisabled(false), idempotent.WithCompletionTimeout(1))
			runs := 0
			send := restKind.wrap(e, func(ctx context.Context, _ string) (response, error) {
				runs++
				idempotent.AddEffect(ctx, "put payment")
				return response{StatusCode: 201, Body: `{"id":"pay_1"}`}, nil
			})
			r, err := send(context.Background(), input{})
			require.NoError(t, err)
			doc := assertProblem(t, r, tc.status, tc.problem)
			assert.Equal(t, tc.retryAfter, r.Headers["Retry-After"])
			assert.Contains(t, doc["detail"], tc.detail)
			assert.NotContains(t, doc["detail"], "nothing was changed")
			assert.Equal(t, tc.runs, runs)
		})
	}
}
