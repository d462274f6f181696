package redislocal

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// EnvServer names the environment variable holding the server binary to run instead of redis-server from PATH,
// for example /usr/bin/valkey-server.
const EnvServer = "REDIS_SERVER"

// ErrNotInstalled is returned by Start when no server binary is found.
var ErrNotInstalled = errors.New("redis-server is not installed: run `make deps` (as root it runs apt-get install redis-server), " +
	"or set " + EnvServer + " to a redis-server or valkey-server binary")

// errExited is wrapped into Start's error when the server exits during start-up.
var errExited = errors.New("redis-server exited during start-up")

// Options configures Start. The zero value is ready to use.
type Options struct {
	// Port is the TCP port to listen on. Zero picks a free port.
	Port int
	// Binary is the server to run. Empty means $REDIS_SERVER, else redis-server from PATH.
	Binary string
	// Dir is the server's working directory (where an append-only file would go). Empty means a new temporary
	// directory that Stop removes; a directory given here is kept, so a server started again on it with
	// Persistent set finds its data.
	Dir string
	// Persistent turns on the append-only file with an fsync per write (appendfsync always), so that data
	// survives a restart of the server on the same Dir, even after SIGKILL. Default false: persistence off
	// (no RDB snapshots, no AOF), as a cache that loses everything on restart.
	Persistent bool
	// Log receives the server's output. Nil discards it (the last lines still appear in the error when it fails
	// to start).
	Log io.Writer
	// StartTimeout bounds the wait until the server answers PING. Zero means 30s.
	StartTimeout time.Duration
}

// Instance is a running server process.
type Instance struct {
	cmd      *exec.Cmd
	port     int
	dir      string
	ownDir   bool
	done     chan struct{} // closed when the process has exited
	waitErr  error         // set before done is closed
	stopOnce sync.Once
	stopErr  error
}

// Start launches the server and returns once it answers PING. ctx bounds only the start-up; the process lives
// until Stop (or until this process dies: on Linux the server gets SIGKILL with its parent).
func Start(ctx context.Context, opts Options) (*Instance, error) {
	bin := opts.Binary
	if bin == "" {
		bin = os.Getenv(EnvServer)
	}
	if bin == "" {
		bin = "redis-server"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, fmt.Errorf("%w (%v)", ErrNotInstalled, err)
	}
	timeout := opts.StartTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	dir, ownDir := opts.Dir, false
	if dir == "" {
		if dir, err = os.MkdirTemp("", "redislocal-"); err != nil {
			return nil, fmt.Errorf("redislocal: %w", err)
		}
		ownDir = true
	}

	// A free port found by listening can be taken by someone else before the server binds it; when we chose the
	// port, a lost race is retried with a new one.
	attempts := 1
	if opts.Port == 0 {
		attempts = 3
	}
	var lastErr error
	for range attempts {
		port := opts.Port
		if port == 0 {
			if port, err = freePort(); err != nil {
				lastErr = fmt.Errorf("redislocal: find a free port: %w", err)
				break
			}
		}
		// The readiness probe cannot tell our server from another one on the same port, so a port already in use
		// is refused before launching.
		if err := portFree(port); err != nil {
			lastErr = fmt.Errorf("redislocal: port %d is already in use: %w", port, err)
			break
		}
		inst, err := launch(ctx, path, dir, port, opts)
		if err == nil {
			inst.ownDir = ownDir
			return inst, nil
		}
		lastErr = err
		if ctx.Err() != nil || !errors.Is(err, errExited) || !strings.Contains(err.Error(), "Address already in use") {
			break
		}
	}
	if ownDir {
		_ = os.RemoveAll(dir)
	}
	return nil, lastErr
}

func launch(ctx context.Context, bin, dir string, port int, opts Options) (*Instance, error) {
	tail := &tailBuffer{max: 4096}
	var out io.Writer = tail
	if opts.Log != nil {
		out = io.MultiWriter(tail, opts.Log)
	}
	args := []string{
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--dir", dir,
		"--save", "",
		"--logfile", "",
		"--daemonize", "no",
	}
	if opts.Persistent {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("redislocal: start %s: %w", bin, err)
	}
	inst := &Instance{cmd: cmd, port: port, dir: dir, done: make(chan struct{})}
	go func() {
		inst.waitErr = cmd.Wait()
		close(inst.done)
	}()
	if err := inst.waitReady(ctx); err != nil {
		_ = inst.Stop()
		if msg := strings.TrimSpace(tail.String()); msg != "" {
			return nil, fmt.Errorf("%w; the server said:\n%s", err, msg)
		}
		return nil, err
	}
	return inst, nil
}

// waitReady sends PING until the server answers PONG, the process exits or ctx ends.
func (i *Instance) waitReady(ctx context.Context) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := ping(ctx, i.Addr())
		if err == nil {
			return nil
		}
		select {
		case <-i.done:
			return fmt.Errorf("redislocal: %w (%v)", errExited, i.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("redislocal: the server did not answer on %s in time: %w", i.Addr(), err)
		case <-tick.C:
		}
	}
}

// ping sends an inline PING and expects +PONG: no client library is needed to know the server is up.
func ping(ctx context.Context, addr string) error {
	d := net.Dialer{Timeout: time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

// Addr is the server's address, host:port, always on the loopback address.
func (i *Instance) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(i.port)) }

// URL is the server's address as a redis:// URL, for redis.ParseURL.
func (i *Instance) URL() string { return "redis://" + i.Addr() }

// Port is the TCP port the server listens on.
func (i *Instance) Port() int { return i.port }

// Dir is the server's working directory.
func (i *Instance) Dir() string { return i.dir }

// PID is the server's process id.
func (i *Instance) PID() int { return i.cmd.Process.Pid }

// Done is closed when the process has exited, whether through Stop or not.
func (i *Instance) Done() <-chan struct{} { return i.done }

// Stop kills the server (SIGKILL, by its PID), waits for it to exit, and removes the directory Start created.
// With Persistent set, every acknowledged write is already on disk (appendfsync always), so nothing is lost that
// a graceful shutdown would keep. Stop is idempotent.
func (i *Instance) Stop() error {
	i.stopOnce.Do(func() {
		select {
		case <-i.done:
		default:
			if err := i.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
				i.stopErr = fmt.Errorf("redislocal: kill pid %d: %w", i.cmd.Process.Pid, err)
			}
			<-i.done
		}
		if i.ownDir {
			if err := os.RemoveAll(i.dir); err != nil && i.stopErr == nil {
				i.stopErr = fmt.Errorf("redislocal: %w", err)
			}
		}
	})
	return i.stopErr
}

func portFree(port int) error {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return err
	}
	return l.Close()
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
