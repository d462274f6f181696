package localproc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// TailSize is how many of the last bytes of a process's output Tail keeps: enough for the lines that explain a
// failed start, little enough that a long-running server's log is not held in memory.
const TailSize = 4096

// ErrExited is wrapped into WaitReady's error when the process exits before the probe succeeds.
var ErrExited = errors.New("exited during start-up")

// ErrPortInUse is wrapped into OnPort's error when a port given by the caller is already taken.
var ErrPortInUse = errors.New("already in use")

// Command describes the process Start runs.
type Command struct {
	// Name names the server in error messages ("DynamoDB Local", "postgres").
	Name string
	// Addr is where the server will answer (a host:port or URL), named when WaitReady gives up. Empty means the
	// message names no address.
	Addr string
	// Path is the executable; Args its arguments (without the program name).
	Path string
	Args []string
	// Dir is the working directory. Empty means the current one.
	Dir string
	// SysProcAttr is passed to the child as is (a parent-death signal, the credentials to run as). Nil means none.
	SysProcAttr *syscall.SysProcAttr
	// Log receives the process's stdout and stderr as well as the tail. Nil means the tail only.
	Log io.Writer
}

// Process is a running child process, reaped by a goroutine of its own so that Done tells when it has gone.
type Process struct {
	name    string
	addr    string
	cmd     *exec.Cmd
	tail    *tailBuffer
	done    chan struct{} // closed when the process has exited
	waitErr error         // set before done is closed
}

// Start starts c and returns at once; the process lives until Stop, until it exits by itself, or (with a
// parent-death signal in c.SysProcAttr) until this process dies.
func Start(c Command) (*Process, error) {
	tail := &tailBuffer{max: TailSize}
	var out io.Writer = tail
	if c.Log != nil {
		out = io.MultiWriter(tail, c.Log)
	}
	cmd := exec.Command(c.Path, c.Args...)
	cmd.Dir = c.Dir
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = c.SysProcAttr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Process{name: c.Name, addr: c.Addr, cmd: cmd, tail: tail, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// PID is the process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited, whether through Stop or not.
func (p *Process) Done() <-chan struct{} { return p.done }

// Tail returns the last TailSize bytes the process wrote to stdout and stderr.
func (p *Process) Tail() string { return p.tail.String() }

// WaitReady calls probe every interval until it returns nil, the process exits or ctx ends. ctx is the only bound,
// so the caller must give it a deadline. A process that exits gives an error wrapping ErrExited and the
// *exec.ExitError, if any; an ended ctx gives one wrapping ctx.Err() and the last probe's error, so that a caller
// can match context.DeadlineExceeded and a developer can read why the probe failed.
func (p *Process) WaitReady(ctx context.Context, interval time.Duration, probe func(context.Context) error) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		err := probe(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-p.done:
			if p.waitErr == nil {
				return fmt.Errorf("%s %w", p.name, ErrExited)
			}
			return fmt.Errorf("%s %w (%w)", p.name, ErrExited, p.waitErr)
		case <-ctx.Done():
			where := ""
			if p.addr != "" {
				where = " on " + p.addr
			}
			return fmt.Errorf("%s did not answer%s in time: %w (last probe: %w)", p.name, where, ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// Stop sends sig to the process by its PID and waits for it to exit. A process still running grace after sig
// gets SIGKILL, and Stop then reports that it was killed; with sig os.Kill the grace does not matter. Stopping a
// process that has already exited does nothing, so Stop may be called again.
func (p *Process) Stop(sig os.Signal, grace time.Duration) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal %s (pid %d): %w", p.name, p.PID(), err)
	}
	if sig == os.Kill {
		<-p.done // SIGKILL cannot be caught: the kernel ends the process
		return nil
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-p.done:
		return nil
	case <-timer.C:
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s (pid %d) ignored %v for %s and was killed", p.name, p.PID(), sig, grace)
	}
}

// OnPort calls launch with port or, when port is zero, with a free loopback port. A readiness probe cannot tell
// our server from another one on the same port, so a port that is already taken is refused before launch: a port
// given by the caller with an error wrapping ErrPortInUse, a chosen one by choosing again. A free port found by
// listening can also be taken by someone else before the server binds it: when lost says launch's error is such
// a lost race and the port was chosen here, launch is called again with a new one, three attempts in all.
func OnPort(ctx context.Context, port int, launch func(port int) error, lost func(error) bool) error {
	const attempts = 3
	var err error
	for range attempts {
		p := port
		if p == 0 {
			if p, err = FreePort(); err != nil {
				return fmt.Errorf("find a free port: %w", err)
			}
		}
		if err = portFree(p); err != nil {
			err = fmt.Errorf("port %d is %w: %w", p, ErrPortInUse, err)
		} else if err = launch(p); err == nil || !lost(err) {
			return err
		}
		if port != 0 || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func portFree(port int) error {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return err
	}
	return l.Close()
}

// tailBuffer keeps the last max bytes written; stdout and stderr write it from two goroutines.
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
