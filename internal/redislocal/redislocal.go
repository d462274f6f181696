package redislocal

import (
	"bufio"
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

	"github.com/idemkit/idemkit/internal/localproc"
)

// EnvServer names the environment variable holding the server binary to run instead of redis-server from PATH,
// for example /usr/bin/valkey-server.
const EnvServer = "REDIS_SERVER"

// ErrNotInstalled is returned by Start when no server binary is found.
var ErrNotInstalled = errors.New("redis-server is not installed: run `make deps` (as root it runs apt-get install redis-server), " +
	"or set " + EnvServer + " to a redis-server or valkey-server binary")

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
	proc     *localproc.Process
	port     int
	dir      string
	ownDir   bool
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
		return nil, fmt.Errorf("%w (%w)", ErrNotInstalled, err)
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
	var inst *Instance
	err = localproc.OnPort(ctx, opts.Port, func(port int) (err error) {
		inst, err = launch(ctx, path, dir, port, opts)
		return err
	}, func(err error) bool {
		return errors.Is(err, localproc.ErrExited) && strings.Contains(err.Error(), "Address already in use")
	})
	if err != nil {
		if ownDir {
			_ = os.RemoveAll(dir)
		}
		return nil, fmt.Errorf("redislocal: %w", err)
	}
	inst.ownDir = ownDir
	return inst, nil
}

func launch(ctx context.Context, bin, dir string, port int, opts Options) (*Instance, error) {
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
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	proc, err := localproc.Start(localproc.Command{
		Name:        "redis-server",
		Addr:        addr,
		Path:        bin,
		Args:        args,
		Dir:         dir,
		SysProcAttr: sysProcAttr(),
		Log:         opts.Log,
	})
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	inst := &Instance{proc: proc, port: port, dir: dir}
	if err := proc.WaitReady(ctx, 20*time.Millisecond, func(ctx context.Context) error { return ping(ctx, addr) }); err != nil {
		_ = inst.Stop()
		if msg := strings.TrimSpace(proc.Tail()); msg != "" {
			return nil, fmt.Errorf("%w; the server said:\n%s", err, msg)
		}
		return nil, err
	}
	return inst, nil
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
func (i *Instance) PID() int { return i.proc.PID() }

// Done is closed when the process has exited, whether through Stop or not.
func (i *Instance) Done() <-chan struct{} { return i.proc.Done() }

// Stop kills the server (SIGKILL, by its PID), waits for it to exit, and removes the directory Start created.
// With Persistent set, every acknowledged write is already on disk (appendfsync always), so nothing is lost that
// a graceful shutdown would keep. Stop is idempotent.
func (i *Instance) Stop() error {
	i.stopOnce.Do(func() {
		if err := i.proc.Stop(os.Kill, 0); err != nil {
			i.stopErr = fmt.Errorf("redislocal: %w", err)
		}
		if i.ownDir {
			if err := os.RemoveAll(i.dir); err != nil && i.stopErr == nil {
				i.stopErr = fmt.Errorf("redislocal: %w", err)
			}
		}
	})
	return i.stopErr
}
