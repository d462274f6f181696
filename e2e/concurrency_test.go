package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/idemkit/idemkit/internal/testwait"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// burst sends n identical requests at once and returns the answers and how long each took.
func burst(t *testing.T, n int, method, path string, header http.Header, body string) ([]response, []time.Duration) {
	t.Helper()
	var (
		wg    sync.WaitGroup
		ready = make(chan struct{})
		resps = make([]response, n)
		took  = make([]time.Duration, n)
		errs  = make([]error, n)
	)
	wg.Add(n)
	for i := range n {
		go func() {
			defer wg.Done()
			<-ready
			start := time.Now()
			resps[i], errs[i] = doRequest(method, path, header, body)
			took[i] = time.Since(start)
		}()
	}
	close(ready)
	testwait.Group(t, &wg, "the concurrent duplicates")
	for i, err := range errs {
		require.NoError(t, err, "request %d", i)
	}
	return resps, took
}

// TestConcurrentDuplicates: three bursts of 20 simultaneous POST /payments with one key and one body charge once
// per burst, and every request of a burst gets the 201: the duplicates that meet the first one running wait for its
// answer (idempotent.WithWait) instead of a 409.
func TestConcurrentDuplicates(t *testing.T) {
	const bursts, n = 3, 20
	var all []time.Duration
	for b := range bursts {
		t.Run(fmt.Sprintf("burst %d", b+1), func(t *testing.T) {
			key := newKey(t)
			resps, took := burst(t, n, http.MethodPost, "/payments", withKey(key), paymentBody(2500, cardVisa, "concurrent"))
			all = append(all, took...)

			ids := map[string]int{}
			replayed := 0
			for i, r := range resps {
				require.Equal(t, http.StatusCreated, r.Status, "answer %d: %s", i, r.Body)
				var p struct {
					ID string `json:"id"`
				}
				require.NoError(t, json.Unmarshal(r.Body, &p), "answer %d: %s", i, r.Body)
				ids[p.ID]++
				assert.Equal(t, string(resps[0].Body), string(r.Body), "answer %d: every body byte-identical", i)
				assert.Equal(t, "/payments/"+p.ID, r.Header.Get("Location"), "answer %d", i)
				if r.Header.Get("Idempotent-Replayed") == "true" {
					replayed++
				}
			}
			assert.Equal(t, n-1, replayed, "one execution, replayed to the others")
			require.Len(t, ids, 1, "exactly one distinct payment id: %v", ids)
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
		})
	}
	slices.Sort(all)
	if len(all) > 0 {
		t.Logf("%d bursts of %d concurrent duplicates: answer times p50 %s, p90 %s, max %s", bursts, n,
			all[len(all)/2].Round(time.Millisecond), all[len(all)*9/10].Round(time.Millisecond), all[len(all)-1].Round(time.Millisecond))
	}
}

// TestConcurrentUserDuplicates: 20 simultaneous POST /users with one key create one user and all get one
// identical 201 (the merged claim: every request makes its one transaction, one commits, the others replay it).
func TestConcurrentUserDuplicates(t *testing.T) {
	const n = 20
	key := newKey(t)
	email := uniqueEmail(t)
	resps, _ := burst(t, n, http.MethodPost, "/users", withKey(key), userBody("Alice", email))
	for i, r := range resps {
		require.Equal(t, http.StatusCreated, r.Status, "answer %d: %s", i, r.Body)
		assert.Equal(t, string(resps[0].Body), string(r.Body), "answer %d: one identical answer", i)
	}
	var u struct {
		ID string `json:"id"`
	}
	require.NoError(t, json.Unmarshal(resps[0].Body, &u))
	r := request(t, http.MethodGet, "/users/"+u.ID, nil, "")
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	assert.JSONEq(t, string(resps[0].Body), string(r.Body))
}
