// Package pgtest gives integration tests a PostgreSQL server: one throwaway server (see pglocal) started lazily
// for the whole test binary and stopped when it ends. Tests that cannot get one fail: they never skip, so a green
// run always means the PostgreSQL code ran. As root, the server runs as the unprivileged "postgres" user (see
// pglocal, "Running as root").
//
// Every package that uses it declares
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }
//
// and in its tests
//
//	pool := pgtest.Pool(t)
//	table := pgtest.UniqueName(t, "idem")
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/idemkit/idemkit/internal/pglocal"
)

var (
	once     sync.Once
	mu       sync.Mutex
	inst     *pglocal.Instance
	pool     *pgxpool.Pool
	setupErr error
)

func setup() {
	i, err := pglocal.Start(context.Background(), pglocal.Options{})
	if err != nil {
		setupErr = fmt.Errorf("pgtest: start PostgreSQL: %w", err)
		return
	}
	mu.Lock()
	inst = i
	mu.Unlock()
	pool, setupErr = pgxpool.New(context.Background(), i.ConnString("postgres"))
}

// Run runs the tests and then stops the server this binary started, if any. Use it from TestMain:
// os.Exit(pgtest.Run(m)).
func Run(m *testing.M) int {
	code := m.Run()
	mu.Lock()
	defer mu.Unlock()
	if pool != nil {
		closePool(pool)
	}
	if inst != nil {
		if err := inst.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest:", err)
		}
		inst = nil
	}
	return code
}

// Instance returns the binary's server, starting it on first use; it fails the test when none can be had. Tests
// that restart the server use it.
func Instance(t testing.TB) *pglocal.Instance {
	t.Helper()
	once.Do(setup)
	if setupErr != nil {
		t.Fatal(setupErr)
	}
	return inst
}

// ConnString returns the connection string of the binary's server (database "postgres", superuser).
func ConnString(t testing.TB) string {
	t.Helper()
	return Instance(t).ConnString("postgres")
}

// Pool returns a connection pool on the binary's server, shared by the tests of the binary.
func Pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	Instance(t)
	return pool
}

// NewPool returns a pool of its own on the binary's server, configured by configure (which may be nil), and
// closes it when the test ends. Tests that count statements, kill connections or change session settings use
// one, so that they disturb no other test.
func NewPool(t testing.TB, configure func(*pgxpool.Config)) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(ConnString(t))
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	if configure != nil {
		configure(cfg)
	}
	p, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatalf("pgtest: new pool: %v", err)
	}
	t.Cleanup(func() { closePool(p) })
	return p
}

// closePool closes p, waiting at most 10 s: pgxpool's Close waits for every acquired connection to be released,
// and a failed test may have left one acquired (a transaction it never ended). Stopping the server then ends
// such connections anyway; the test binary must not hang on them.
func closePool(p *pgxpool.Pool) {
	done := make(chan struct{})
	go func() {
		p.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		fmt.Fprintln(os.Stderr, "pgtest: a connection pool still had acquired connections after 10s (a test left a transaction open); closing without them")
	}
}

var unsafeChars = regexp.MustCompile(`[^a-z0-9_]+`)

// UniqueName returns a lower-case identifier (at most 63 bytes, PostgreSQL's limit) that starts with prefix,
// names the test, and is unique even when test binaries share a server.
func UniqueName(t testing.TB, prefix string) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	name := unsafeChars.ReplaceAllString(strings.ToLower(prefix+"_"+t.Name()), "_")
	const maxBase = 63 - 1 - 2*len(b)
	if len(name) > maxBase {
		name = name[:maxBase]
	}
	return name + "_" + hex.EncodeToString(b[:])
}
