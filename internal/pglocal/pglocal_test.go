package pglocal_test

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/internal/pglocal"
)

func TestStartQueryRestartStop(t *testing.T) {
	ctx := context.Background()
	inst, err := pglocal.Start(ctx, pglocal.Options{Settings: map[string]string{"application_name": "pglocal-test"}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = inst.Stop() })

	query := func() string {
		conn, err := pgx.Connect(ctx, inst.ConnString("postgres"))
		require.NoError(t, err)
		defer conn.Close(ctx)
		var v string
		require.NoError(t, conn.QueryRow(ctx, "SELECT current_setting('fsync') || ' ' || current_setting('listen_addresses')").Scan(&v))
		return v
	}
	assert.Equal(t, "off 127.0.0.1", query())

	pid := inst.PID()
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root: the server must run as the unprivileged postgres user.
		u, err := user.Lookup("postgres")
		require.NoError(t, err)
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		require.NoError(t, err)
		assert.Regexp(t, `(?m)^Uid:\t`+u.Uid+`\t`, string(status), "the server runs as postgres, not root")
	}
	require.NoError(t, inst.Restart(ctx))
	assert.NotEqual(t, pid, inst.PID(), "a new postmaster")
	assert.Equal(t, "off 127.0.0.1", query(), "same port after the restart")

	require.NoError(t, inst.Stop())
	require.NoError(t, inst.Stop(), "Stop is idempotent")
	_, err = pgx.Connect(ctx, inst.ConnString("postgres"))
	assert.Error(t, err, "the server is gone")
	_, statErr := os.Stat(inst.Dir())
	assert.ErrorIs(t, statErr, os.ErrNotExist, "Stop removes the temporary directory")
}

func TestMissingBinariesFailClearly(t *testing.T) {
	_, err := pglocal.Start(context.Background(), pglocal.Options{BinDir: t.TempDir()})
	require.ErrorIs(t, err, pglocal.ErrNotInstalled)
	assert.Contains(t, err.Error(), "make postgres")
}
