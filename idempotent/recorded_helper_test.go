package idempotent_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/idempotent"
)

// storeCompleted writes a COMPLETED record for id into s as an earlier request (owner "first") would have left it:
// claimed at now, then completed with response (nil: kept without its response), expiring an hour later.
func storeCompleted(t *testing.T, s idempotent.Store, id, fingerprint string, response []byte, now time.Time) {
	t.Helper()
	ctx := context.Background()
	rec := idempotent.Record{ID: id, Status: idempotent.StatusInProgress, Fingerprint: fingerprint, Owner: "first",
		LeaseEnd: now.Add(time.Minute), ExpiresAt: now.Add(time.Hour)}
	existing, err := s.Claim(ctx, idempotent.Claim{Record: rec, Now: now})
	require.NoError(t, err)
	require.Nil(t, existing, "the key was free")
	rec.Status, rec.LeaseEnd, rec.Response = idempotent.StatusCompleted, time.Time{}, response
	require.NoError(t, s.Complete(ctx, rec, nil))
}
