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
	"bytes"
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
	proc     *process
	stopOnce sync.Once
	stopErr  error
}

// process is one run of the postgres server.
type process struct {
	cmd     *exec.Cmd
	tail    *tailBuffer
	done    chan struct{} // closed when the process has exited
	waitErr error         // set before done is closed
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
	// A free port found by listening can be taken by someone else before postgres binds it: retried with another.
	var lastErr error
	for range 3 {
		if inst.port, err = freePort(); err != nil {
			_ = os.RemoveAll(dir)
			return nil, fmt.Errorf("pglocal: find a free port: %w", err)
		}
		if lastErr = inst.launch(ctx); lastErr == nil {
			return inst, nil
		}
		if ctx.Err() != nil || !strings.Contains(lastErr.Error(), "could not bind") {
			break
		}
	}
	_ = os.RemoveAll(dir)
	return nil, lastErr
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
	tail := &tailBuffer{max: 4096}
	var out io.Writer = tail
	if i.opts.Log != nil {
		out = io.MultiWriter(tail, i.opts.Log)
	}
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
	cmd := exec.Command(filepath.Join(i.bin, "postgres"), args...)
	cmd.Dir = i.dir
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = sysProcAttr(i.cred)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pglocal: start postgres: %w", err)
	}
	p := &process{cmd: cmd, tail: tail, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	i.mu.Lock()
	i.proc = p
	i.mu.Unlock()
	if err := i.waitReady(ctx, p); err != nil {
		_ = p.stop()
		if msg := strings.TrimSpace(tail.String()); msg != "" {
			return fmt.Errorf("%w; postgres said:\n%s", err, msg)
		}
		return err
	}
	return nil
}

// waitReady connects until a connection succeeds, the process exits or ctx ends.
func (i *Instance) waitReady(ctx context.Context, p *process) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		conn, err := pgconn.Connect(cctx, i.ConnString("postgres"))
		cancel()
		if err == nil {
			_ = conn.Close(ctx)
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("pglocal: postgres exited during start-up (%v)", p.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("pglocal: postgres did not accept connections on 127.0.0.1:%d in time: %w", i.port, err)
		case <-tick.C:
		}
	}
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
	return i.proc.cmd.Process.Pid
}

// Restart stops the server with a fast shutdown (every connection is closed, as in a failover or a reboot) and
// starts it again on the same port and data, returning once it accepts connections.
func (i *Instance) Restart(ctx context.Context) error {
	i.mu.Lock()
	p := i.proc
	i.mu.Unlock()
	if err := p.stop(); err != nil {
		return err
	}
	timeout := i.opts.StartTimeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return i.launch(ctx)
}

// Stop shuts the server down (fast shutdown: open transactions are rolled back) by its PID, waits for it to exit
// and removes the temporary directory. Stop is idempotent.
func (i *Instance) Stop() error {
	i.stopOnce.Do(func() {
		i.mu.Lock()
		p := i.proc
		i.mu.Unlock()
		if p != nil {
			i.stopErr = p.stop()
		}
		if err := os.RemoveAll(i.dir); err != nil && i.stopErr == nil {
			i.stopErr = fmt.Errorf("pglocal: remove %s: %w", i.dir, err)
		}
	})
	return i.stopErr
}

// stop sends SIGINT (PostgreSQL's fast shutdown) and waits for the exit; after 30 s it kills the process.
func (p *process) stop() error {
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("pglocal: signal pid %d: %w", p.cmd.Process.Pid, err)
	}
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	select {
	case <-p.done:
		return nil
	case <-timer.C:
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("pglocal: postgres (pid %d) ignored the fast shutdown for 30s and was killed", p.cmd.Process.Pid)
	}
}

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

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tailBuffer keeps the last max bytes written, so a failed start can show the server's last words.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf bytes.Buffer
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if over := b.buf.Len() - b.max; over > 0 {
		b.buf.Next(over)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
