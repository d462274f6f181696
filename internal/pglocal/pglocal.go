// Package pglocal runs a throwaway PostgreSQL server for tests: initdb into a temporary directory, then the
// postgres server in the foreground on a free loopback port, stopped by its PID. It uses the binaries of the
// Debian/Ubuntu package (postgresql-15 installs them under /usr/lib/postgresql/15/bin; `make postgres` installs the
// package when it is missing).
//
// The server is a child of the test binary rather than a daemon started by pg_ctl: its PID is known, Stop ends it
// with a fast shutdown and removes the directory, and on Linux the kernel stops it (SIGQUIT, PostgreSQL's immediate
// shutdown) should the test binary die first, so a killed test run leaves no server behind.
//
// # Running as root
//
// PostgreSQL refuses to run as root (initdb and postgres both exit with "cannot be run as root"), and CI and the
// development containers run as root. When the effective user is root, Start therefore runs initdb and postgres as
// the unprivileged system user "postgres" that the Debian package creates (Options.User to change it): the
// temporary directory is handed to that user with chown, and the processes get its UID and GID through
// SysProcAttr.Credential. As any other user, Start runs them as that user.
//
// The server listens on 127.0.0.1 only, keeps its Unix socket inside the temporary directory (never in
// /var/run/postgresql, which belongs to the system's own cluster), trusts every local connection (no password),
// and runs with fsync off: durability across a machine crash is of no use to a test.
package pglocal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/idemkit/idemkit/internal/localproc"
)

// EnvBinDir names the variable that points at the directory holding initdb and postgres, for installations
// elsewhere than Debian's /usr/lib/postgresql/<major>/bin.
const EnvBinDir = "IDEMKIT_POSTGRES_BIN"

// SuperUser is the name of the superuser initdb creates; connections use it.
const SuperUser = "postgres"

// ErrNotInstalled is returned when the PostgreSQL server binaries cannot be found.
var ErrNotInstalled = errors.New("PostgreSQL server binaries not found: run `make postgres` (as root it installs " +
	"Debian's postgresql package: apt-get install postgresql), or set " + EnvBinDir + " to the directory holding initdb and postgres")

// Options configures Start. The zero value is ready to use.
type Options struct {
	// BinDir holds initdb and postgres. Empty means $IDEMKIT_POSTGRES_BIN, else the newest
	// /usr/lib/postgresql/<major>/bin, else the directories of $PATH.
	BinDir string
	// User is the account initdb and postgres run as when the current process is root. Empty means "postgres",
	// the system user of Debian's package. Ignored when not running as root.
	User string
	// Log receives the server's output. Nil discards it (the last lines still appear in a start-up error).
	Log io.Writer
	// StartTimeout bounds initdb and the wait until the server accepts connections. Zero means 60s: on a loaded
	// two-core machine initdb alone can take several seconds.
	StartTimeout time.Duration
	// Settings are extra server settings (postgresql.conf names), passed as -c name=value.
	Settings map[string]string
}

// Instance is a running PostgreSQL server and the temporary directory that holds its data.
type Instance struct {
	bin      string
	dir      string // the temporary directory: data/ and the Unix socket
	port     int
	opts     Options
	cred     *syscall.Credential
	mu       sync.Mutex
	proc     *localproc.Process // the current run of the server: Restart replaces it
	stopOnce sync.Once
	stopErr  error
}

// Start creates a database cluster in a new temporary directory and starts a server on it, returning once the
// server accepts connections. ctx bounds only the start-up.
func Start(ctx context.Context, opts Options) (*Instance, error) {
	bin, err := findBinDir(opts.BinDir)
	if err != nil {
		return nil, err
	}
	timeout := opts.StartTimeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	cred, err := credential(opts.User)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "idemkit-pg-")
	if err != nil {
		return nil, fmt.Errorf("pglocal: %w", err)
	}
	inst := &Instance{bin: bin, dir: dir, opts: opts, cred: cred}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			_ = os.RemoveAll(dir)
			return nil, fmt.Errorf("pglocal: hand %s to the unprivileged user: %w", dir, err)
		}
	}
	if err := inst.initdb(ctx); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	err = localproc.OnPort(ctx, 0, func(port int) error {
		inst.port = port
		return inst.launch(ctx)
	}, func(err error) bool { return strings.Contains(err.Error(), "could not bind") })
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("pglocal: %w", err)
	}
	return inst, nil
}

// credential returns the identity to run the server as: nil unless the process is root (PostgreSQL refuses to
// run as root), else that of name (default "postgres").
func credential(name string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	if name == "" {
		name = "postgres"
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("pglocal: running as root, and PostgreSQL refuses to run as root; the unprivileged "+
			"user %q to run it as does not exist (Debian's postgresql package creates it; set Options.User): %w", name, err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("pglocal: user %q has a non-numeric UID or GID (%s:%s)", name, u.Uid, u.Gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
}

func (i *Instance) dataDir() string { return filepath.Join(i.dir, "data") }

// initdb creates the cluster: trust authentication (loopback and the private socket only), UTF-8, the C locale
// (no locale data needed), and no fsync of the new files.
func (i *Instance) initdb(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, filepath.Join(i.bin, "initdb"),
		"-D", i.dataDir(), "-U", SuperUser, "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync")
	cmd.Dir = i.dir
	cmd.SysProcAttr = sysProcAttr(i.cred)
	out, err := cmd.CombinedOutput()
	if err != nil {
		hint := ""
		if i.cred != nil {
			hint = fmt.Sprintf(" (initdb runs as UID %d, which must be able to reach %s: check TMPDIR)", i.cred.Uid, i.dir)
		}
		return fmt.Errorf("pglocal: initdb in %s%s: %w\n%s", i.dataDir(), hint, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// launch starts postgres on i.port and waits until it accepts connections.
func (i *Instance) launch(ctx context.Context) error {
	args := []string{
		"-D", i.dataDir(),
		"-p", strconv.Itoa(i.port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=" + i.dir,
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
		"-c", "max_connections=200",
		"-c", "shared_buffers=32MB",
	}
	keys := make([]string, 0, len(i.opts.Settings))
	for k := range i.opts.Settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		args = append(args, "-c", k+"="+i.opts.Settings[k])
	}
	p, err := localproc.Start(localproc.Command{
		Name:        "postgres",
		Addr:        net.JoinHostPort("127.0.0.1", strconv.Itoa(i.port)),
		Path:        filepath.Join(i.bin, "postgres"),
		Args:        args,
		Dir:         i.dir,
		SysProcAttr: sysProcAttr(i.cred),
		Log:         i.opts.Log,
	})
	if err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	i.mu.Lock()
	i.proc = p
	i.mu.Unlock()
	err = p.WaitReady(ctx, 50*time.Millisecond, func(ctx context.Context) error {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		conn, err := pgconn.Connect(cctx, i.ConnString("postgres"))
		if err != nil {
			return err
		}
		return conn.Close(ctx)
	})
	if err != nil {
		_ = stop(p)
		if msg := strings.TrimSpace(p.Tail()); msg != "" {
			return fmt.Errorf("%w; postgres said:\n%s", err, msg)
		}
		return err
	}
	return nil
}

// ConnString returns a connection string (URL form) for database on the loopback TCP port, as the superuser.
func (i *Instance) ConnString(database string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", SuperUser, i.port, database)
}

// Dir is the temporary directory holding the data directory and the Unix socket; Stop removes it.
func (i *Instance) Dir() string { return i.dir }

// Port is the TCP port the server listens on.
func (i *Instance) Port() int { return i.port }

// PID is the process ID of the running postmaster.
func (i *Instance) PID() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.proc.PID()
}

// Restart stops the server with a fast shutdown (every connection is closed, as in a failover or a reboot) and
// starts it again on the same port and data, returning once it accepts connections.
func (i *Instance) Restart(ctx context.Context) error {
	i.mu.Lock()
	p := i.proc
	i.mu.Unlock()
	if err := stop(p); err != nil {
		return fmt.Errorf("pglocal: %w", err)
	}
	timeout := i.opts.StartTimeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := i.launch(ctx); err != nil {
		return fmt.Errorf("pglocal: %w", err)
	}
	return nil
}

// Stop shuts the server down (fast shutdown: open transactions are rolled back) by its PID, waits for it to exit
// and removes the temporary directory. Stop is idempotent.
func (i *Instance) Stop() error {
	i.stopOnce.Do(func() {
		i.mu.Lock()
		p := i.proc
		i.mu.Unlock()
		if p != nil {
			if err := stop(p); err != nil {
				i.stopErr = fmt.Errorf("pglocal: %w", err)
			}
		}
		if err := os.RemoveAll(i.dir); err != nil && i.stopErr == nil {
			i.stopErr = fmt.Errorf("pglocal: remove %s: %w", i.dir, err)
		}
	})
	return i.stopErr
}

// stop sends SIGINT (PostgreSQL's fast shutdown: open transactions are rolled back, connections closed) and
// waits for the exit; after 30 s it kills the process.
func stop(p *localproc.Process) error { return p.Stop(syscall.SIGINT, 30*time.Second) }

// findBinDir locates initdb and postgres.
func findBinDir(dir string) (string, error) {
	var candidates []string
	switch {
	case dir != "":
		candidates = []string{dir}
	case os.Getenv(EnvBinDir) != "":
		candidates = []string{os.Getenv(EnvBinDir)}
	default:
		// Debian keeps each major version apart; the newest installed wins (numeric order: 9 < 10).
		majors, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
		sort.Slice(majors, func(a, b int) bool { return majorOf(majors[a]) > majorOf(majors[b]) })
		candidates = append(majors, filepath.SplitList(os.Getenv("PATH"))...)
	}
	for _, d := range candidates {
		if isExecutable(filepath.Join(d, "initdb")) && isExecutable(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", fmt.Errorf("%w (looked in %s)", ErrNotInstalled, strings.Join(candidates, ", "))
}

func majorOf(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}
