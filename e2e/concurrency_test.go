package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/idemkit/idemkit/internal/testwait"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestConcurrentDuplicates: 30 simultaneous POST /payments with one key and one body charge once.
func TestConcurrentDuplicates(t *testing.T) {
	const n = 30
	key := newKey(t)
	body := paymentBody(2500, cardVisa, "concurrent")

	var (
		wg    sync.WaitGroup
		ready = make(chan struct{})
		resps = make([]response, n)
		errs  = make([]error, n)
	)
	wg.Add(n)
	for i := range n {
		go func() {
			defer wg.Done()
			<-ready
			resps[i], errs[i] = doRequest(http.MethodPost, "/payments", withKey(key), body)
		}()
	}
	close(ready)
	testwait.Group(t, &wg, "the concurrent duplicates")

	for i, err := range errs {
		require.NoError(t, err, "request %d", i)
	}

	ids := map[string]int{}
	var first []byte
	var ok, busy int
	for i, r := range resps {
		switch {
		case r.Status >= 200 && r.Status < 300:
			ok++
			assert.Equal(t, http.StatusCreated, r.Status, "answer %d", i)
			var p struct {
				ID string `json:"id"`
			}
			require.NoError(t, json.Unmarshal(r.Body, &p), "answer %d: %s", i, r.Body)
			ids[p.ID]++
			if first == nil {
				first = r.Body
			}
			assert.Equal(t, string(first), string(r.Body), "answer %d: every 2xx body byte-identical", i)
			assert.Equal(t, "/payments/"+p.ID, r.Header.Get("Location"), "answer %d", i)
		case r.Status == http.StatusConflict:
			busy++
			assertProblem(t, r, http.StatusConflict)
			ra, err := strconv.Atoi(r.Header.Get("Retry-After"))
			require.NoError(t, err, "answer %d: Retry-After %q", i, r.Header.Get("Retry-After"))
			assert.GreaterOrEqual(t, ra, 1, "answer %d: Retry-After", i)
		default:
			t.Errorf("answer %d: unexpected status %d: %s", i, r.Status, r.Body)
		}
	}
	t.Logf("%d concurrent duplicates: %d answered 201, %d answered 409", n, ok, busy)
	require.Positive(t, ok, "at least one request must have run")
	require.Len(t, ids, 1, "exactly one distinct payment id across all 2xx answers: %v", ids)
	var id string
	for id = range ids {
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	items, err := scanAll(ctx, dynamoClient(), "PaymentsTable")
	require.NoError(t, err)
	count := 0
	for _, it := range items {
		if s, ok := it["id"].(*types.AttributeValueMemberS); ok && s.Value == id {
			count++
		}
	}
	assert.Equal(t, 1, count, "exactly one PaymentsTable item for %s", id)

	leaks, err := findSecrets(ctx, secretsToFind(key))
	require.NoError(t, err)
	assert.Empty(t, leaks, "no stored item may hold a card number, a CVV or a raw idempotency key")
}
