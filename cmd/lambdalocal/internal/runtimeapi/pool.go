package runtimeapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"sync"
	"time"
)

// MaxPayload is Lambda's limit for a synchronous invocation's request and response (6 MB).
const MaxPayload = 6 * 1024 * 1024

// ErrClosed is returned by Invoke once the pool is closing.
var ErrClosed = errors.New("runtimeapi: pool closed")

// Config describes one function.
type Config struct {
	// Function is the function's name, used in its ARN and in log prefixes.
	Function string
	// Command is the bootstrap executable; Args are passed to it.
	Command string
	Args    []string
	// Dir is the working directory of the process (empty: the runner's).
	Dir string
	// Env is the complete environment of the process; AWS_LAMBDA_RUNTIME_API is added per instance.
	Env []string
	// Timeout is the function's timeout. Zero means 3s, Lambda's default.
	Timeout time.Duration
	// Instances is how many processes serve the function at once. Zero means 1.
	Instances int
	// InitTimeout bounds the start of a process until its first /next. Zero means 10s, Lambda's init limit.
	InitTimeout time.Duration
	// Output receives the processes' stdout and stderr, each line prefixed by
	// "[Function#n] ". Nil discards them.
	Output io.Writer
}

// Result is the outcome of one invocation, as Lambda's Invoke API reports it.
type Result struct {
	RequestID string
	// Payload is the function's response, or the error document when FunctionError is set.
	Payload []byte
	// FunctionError is "" on success, else "Unhandled" (the X-Amz-Function-Error value).
	FunctionError string
	// ErrorType is the error's type: the runtime's own, or Sandbox.Timedout,
	// Runtime.ExitError, Function.ResponseSizeTooLarge for failures seen from outside.
	ErrorType string
	Duration  time.Duration
}

// Failed reports whether the invocation ended in a function error.
func (r *Result) Failed() bool { return r.FunctionError != "" }

// InvokeOptions are per-invocation settings.
type InvokeOptions struct {
	// RequestID is the invocation's id; empty means a fresh UUID.
	RequestID string
	// TraceID is the X-Ray header passed in Lambda-Runtime-Trace-Id; empty means a fresh one.
	TraceID string
}

// Pool runs the instances of one function.
type Pool struct {
	cfg    Config
	out    io.Writer
	ctx    context.Context
	cancel context.CancelFunc
	idle   chan *instance // instances blocked in /next, waiting for work
	wg     sync.WaitGroup

	mu        sync.Mutex
	instances map[int]*instance
	seq       int
	ready     int           // live instances that reached /next at least once
	initErr   *Result       // why the last instance failed to start, while none is ready
	changed   chan struct{} // closed and replaced whenever ready or initErr change
	failures  int           // consecutive start failures, for the restart back-off
	closed    bool
}

// Start launches cfg.Instances processes and returns without waiting for them to
// initialise: an Invoke waits for the first free one.
func Start(cfg Config) (*Pool, error) {
	if cfg.Command == "" {
		return nil, errors.New("runtimeapi: Command is required")
	}
	if _, err := os.Stat(cfg.Command); err != nil {
		return nil, fmt.Errorf("runtimeapi: bootstrap: %w", err)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 3 * time.Second
	}
	if cfg.Instances <= 0 {
		cfg.Instances = 1
	}
	if cfg.InitTimeout <= 0 {
		cfg.InitTimeout = 10 * time.Second
	}
	out := cfg.Output
	if out == nil {
		out = io.Discard
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Pool{
		cfg:       cfg,
		out:       &lockedWriter{w: out},
		ctx:       ctx,
		cancel:    cancel,
		idle:      make(chan *instance, 4*cfg.Instances+8),
		instances: map[int]*instance{},
		changed:   make(chan struct{}),
	}
	for n := 0; n < cfg.Instances; n++ {
		if err := p.spawn(); err != nil {
			p.Close()
			return nil, err
		}
	}
	return p, nil
}

// Function is the function's name.
func (p *Pool) Function() string { return p.cfg.Function }

// Timeout is the function's timeout.
func (p *Pool) Timeout() time.Duration { return p.cfg.Timeout }

// PIDs returns the process ids of the live instances, for tests and diagnostics.
func (p *Pool) PIDs() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []int
	for _, i := range p.instances {
		i.mu.Lock()
		if i.started {
			out = append(out, i.cmd.Process.Pid)
		}
		i.mu.Unlock()
	}
	return out
}

// Ready returns how many instances have initialised and are alive.
func (p *Pool) Ready() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ready
}

// InstanceInfo describes one live instance of a pool.
type InstanceInfo struct {
	// N is the instance's number, as in the "[Function#N]" prefix of its output. A replacement gets a new number.
	N int
	// PID is the process id of the instance's bootstrap.
	PID int
	// Ready reports whether the instance has reached its first GET /runtime/invocation/next.
	Ready bool
	// ReadyIn is the cold start as the runner sees it: from just before the process was started (fork and exec
	// included) to its first GET /runtime/invocation/next, i.e. the runtime's whole init phase. Zero until Ready.
	ReadyIn time.Duration
}

// Instances describes the live instances (started processes that have not exited), ordered by N.
func (p *Pool) Instances() []InstanceInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]InstanceInfo, 0, len(p.instances))
	for _, i := range p.instances {
		i.mu.Lock()
		if i.started && !i.dead {
			out = append(out, InstanceInfo{N: i.n, PID: i.cmd.Process.Pid, Ready: i.ready, ReadyIn: i.readyIn})
		}
		i.mu.Unlock()
	}
	sort.Slice(out, func(a, b int) bool { return out[a].N < out[b].N })
	return out
}

// WaitReady blocks until at least n instances are ready (alive and past their first /next), ctx ends or the pool
// closes. Instances that fail to initialise are replaced meanwhile, so a bootstrap that never initialises makes
// WaitReady return ctx's error, with the last init failure when there is one.
func (p *Pool) WaitReady(ctx context.Context, n int) error {
	for {
		p.mu.Lock()
		closed, ready, initErr, changed := p.closed, p.ready, p.initErr, p.changed
		p.mu.Unlock()
		switch {
		case closed:
			return ErrClosed
		case ready >= n:
			return nil
		}
		select {
		case <-changed:
		case <-p.ctx.Done():
			return ErrClosed
		case <-ctx.Done():
			if initErr != nil {
				return fmt.Errorf("%w (last init failure: %s: %s)", ctx.Err(), initErr.ErrorType, initErr.Payload)
			}
			return ctx.Err()
		}
	}
}

// Invoke runs the function once on payload. Function failures (errors, timeouts,
// crashes) come back in the Result; the error is only for ctx ending or the pool
// closing. When ctx ends first the invocation carries on in its instance, as a
// Lambda invocation outlives API Gateway's integration timeout.
func (p *Pool) Invoke(ctx context.Context, payload []byte, opts InvokeOptions) (*Result, error) {
	inv := &invocation{
		id:      opts.RequestID,
		traceID: opts.TraceID,
		payload: payload,
		done:    make(chan struct{}),
	}
	if inv.id == "" {
		inv.id = NewRequestID()
	}
	if inv.traceID == "" {
		inv.traceID = newTraceID()
	}
	if len(payload) > MaxPayload {
		return errorResult(inv.id, "RequestEntityTooLargeException",
			fmt.Sprintf("Request must be smaller than %d bytes for the InvokeFunction operation", MaxPayload)), nil
	}
	for {
		p.mu.Lock()
		closed, ready, initErr, changed := p.closed, p.ready, p.initErr, p.changed
		p.mu.Unlock()
		if closed {
			return nil, ErrClosed
		}
		if initErr != nil && ready == 0 {
			// Lambda serves an init failure in response to the invocation that waited for it.
			r := *initErr
			r.RequestID = inv.id
			return &r, nil
		}
		select {
		case i := <-p.idle:
			select {
			case i.next <- inv:
				return p.await(ctx, inv)
			case <-i.exited:
				continue // died while idle; its replacement will come
			}
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-p.ctx.Done():
			return nil, ErrClosed
		}
	}
}

func (p *Pool) await(ctx context.Context, inv *invocation) (*Result, error) {
	select {
	case <-inv.done:
		return inv.result, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Close kills every instance (by PID) and stops their Runtime API servers.
func (p *Pool) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.wg.Wait()
		return
	}
	p.closed = true
	insts := make([]*instance, 0, len(p.instances))
	for _, i := range p.instances {
		insts = append(insts, i)
	}
	p.mu.Unlock()
	p.cancel()
	for _, i := range insts {
		i.kill()
	}
	p.wg.Wait()
}

func (p *Pool) notifyLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// spawn starts one instance: its Runtime API listener, then its process.
func (p *Pool) spawn() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	p.seq++
	n := p.seq
	p.mu.Unlock()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("runtimeapi: listen: %w", err)
	}
	i := &instance{
		n:      n,
		pool:   p,
		next:   make(chan *invocation),
		exited: make(chan struct{}),
	}
	i.srv = &http.Server{Handler: i.routes(), ReadHeaderTimeout: 10 * time.Second}
	prefix := fmt.Sprintf("[%s#%d] ", p.cfg.Function, n)
	i.stdout = &lineWriter{prefix: prefix, w: p.out}
	i.stderr = &lineWriter{prefix: prefix, w: p.out}
	cmd := exec.Command(p.cfg.Command, p.cfg.Args...)
	cmd.Dir = p.cfg.Dir
	cmd.Env = append(append([]string{}, p.cfg.Env...),
		"AWS_LAMBDA_RUNTIME_API="+ln.Addr().String(),
		"AWS_LAMBDA_LOG_STREAM_NAME="+fmt.Sprintf("local/%s/%d", p.cfg.Function, n),
	)
	cmd.Stdout = i.stdout
	cmd.Stderr = i.stderr
	cmd.SysProcAttr = sysProcAttr()
	i.cmd = cmd

	// Armed before the process exists so that a fast runtime's first /next always finds it.
	i.initTimer = time.AfterFunc(p.cfg.InitTimeout, func() {
		i.mu.Lock()
		ready := i.ready
		if !ready && i.initErr == nil {
			i.initErr = errorResult("", "Runtime.InitTimeout",
				fmt.Sprintf("Init phase did not reach /runtime/invocation/next within %s", p.cfg.InitTimeout))
		}
		i.mu.Unlock()
		if !ready {
			i.kill()
		}
	})
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		_ = i.srv.Serve(ln)
	}()
	// Registered before Start so that Close, racing with a restart, kills this one too.
	p.mu.Lock()
	p.instances[n] = i
	p.mu.Unlock()
	i.mu.Lock()
	i.spawned = time.Now()
	err = cmd.Start()
	i.started = err == nil
	i.mu.Unlock()
	if err != nil {
		i.initTimer.Stop()
		_ = i.srv.Close()
		p.mu.Lock()
		delete(p.instances, n)
		p.mu.Unlock()
		return fmt.Errorf("runtimeapi: start %s: %w", p.cfg.Command, err)
	}

	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		i.wait()
	}()
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		i.kill() // Close ran while this replacement was starting
	}
	return nil
}

// onExit replaces a dead instance, backing off while instances die before initialising
// (a bootstrap that crashes at start must not spin the CPU).
func (p *Pool) onExit(i *instance, wasReady bool, initErr *Result) {
	p.mu.Lock()
	delete(p.instances, i.n)
	if wasReady {
		p.ready--
		p.failures = 0
	} else {
		p.failures++
		p.initErr = initErr
	}
	p.notifyLocked()
	closed, failures := p.closed, p.failures
	p.mu.Unlock()
	if closed {
		return
	}
	delay := time.Duration(0)
	if failures > 0 {
		delay = min(100*time.Millisecond<<min(failures-1, 7), 10*time.Second)
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		select {
		case <-time.After(delay):
		case <-p.ctx.Done():
			return
		}
		if err := p.spawn(); err != nil && !errors.Is(err, ErrClosed) {
			fmt.Fprintf(p.out, "[%s] cannot start a new instance: %v\n", p.cfg.Function, err)
		}
	}()
}

func (p *Pool) markReady() {
	p.mu.Lock()
	p.ready++
	p.initErr = nil
	p.notifyLocked()
	p.mu.Unlock()
}

type invocation struct {
	id       string
	traceID  string
	payload  []byte
	start    time.Time
	deadline time.Time
	timer    *time.Timer

	once   sync.Once
	done   chan struct{}
	result *Result
}

func (inv *invocation) complete(r *Result) bool {
	completed := false
	inv.once.Do(func() {
		if inv.timer != nil {
			inv.timer.Stop()
		}
		r.RequestID = inv.id
		if !inv.start.IsZero() {
			r.Duration = time.Since(inv.start)
		}
		inv.result = r
		close(inv.done)
		completed = true
	})
	return completed
}

type instance struct {
	n         int
	pool      *Pool
	srv       *http.Server
	cmd       *exec.Cmd
	stdout    *lineWriter
	stderr    *lineWriter
	next      chan *invocation
	exited    chan struct{}
	initTimer *time.Timer

	mu      sync.Mutex
	started bool
	spawned time.Time     // just before cmd.Start
	ready   bool          // reached /next at least once
	readyIn time.Duration // spawned to the first /next
	dead    bool
	current *invocation
	initErr *Result // from /init/error or the init timeout
}

func (i *instance) kill() {
	i.mu.Lock()
	started := i.started
	i.mu.Unlock()
	if !started {
		return
	}
	// Kill by PID; the exit is observed by wait, which replaces the instance.
	if err := i.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		fmt.Fprintf(i.pool.out, "[%s#%d] kill pid %d: %v\n", i.pool.cfg.Function, i.n, i.cmd.Process.Pid, err)
	}
}

func (i *instance) wait() {
	err := i.cmd.Wait()
	i.stdout.flush()
	i.stderr.flush()
	i.initTimer.Stop()
	i.mu.Lock()
	i.dead = true
	cur := i.current
	i.current = nil
	wasReady := i.ready
	initErr := i.initErr
	i.mu.Unlock()
	close(i.exited)
	_ = i.srv.Close()

	status := "exit status 0"
	if err != nil {
		status = err.Error()
	}
	if !wasReady && initErr == nil {
		initErr = errorResult("", "Runtime.ExitError",
			fmt.Sprintf("Runtime exited during init with error: %s", status))
	}
	// The pool forgets the instance before its invocation's caller learns of the crash, so that caller never
	// sees the dead instance in Ready or Instances.
	i.pool.onExit(i, wasReady, initErr)
	if cur != nil {
		cur.complete(errorResult(cur.id, "Runtime.ExitError",
			fmt.Sprintf("RequestId: %s Error: Runtime exited with error: %s", cur.id, status)))
	}
}

// timedOut ends an invocation that ran past the function timeout and kills its
// process: Lambda gives the invocation no more time and discards the environment.
func (i *instance) timedOut(inv *invocation) {
	i.mu.Lock()
	running := i.current == inv
	i.mu.Unlock()
	if !running {
		return
	}
	secs := strconv.FormatFloat(i.pool.cfg.Timeout.Seconds(), 'f', 2, 64)
	if inv.complete(errorResult(inv.id, "Sandbox.Timedout",
		fmt.Sprintf("RequestId: %s Error: Task timed out after %s seconds", inv.id, secs))) {
		fmt.Fprintf(i.pool.out, "[%s#%d] %s Task timed out after %s seconds: killing pid %d\n",
			i.pool.cfg.Function, i.n, inv.id, secs, i.cmd.Process.Pid)
		i.kill()
	}
}

func errorResult(requestID, typ, msg string) *Result {
	payload, _ := json.Marshal(struct {
		ErrorType    string `json:"errorType"`
		ErrorMessage string `json:"errorMessage"`
	}{typ, msg})
	return &Result{RequestID: requestID, Payload: payload, FunctionError: "Unhandled", ErrorType: typ}
}

// NewRequestID returns a random UUID v4, the shape of Lambda's and API Gateway's request ids.
func NewRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// newTraceID returns an X-Ray trace header: Root=1-<epoch hex>-<96 random bits>.
func newTraceID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	var parent [8]byte
	_, _ = rand.Read(parent[:])
	return fmt.Sprintf("Root=1-%08x-%x;Parent=%x;Sampled=0", time.Now().Unix(), b, parent)
}

// lockedWriter serialises writes from every instance's pipes onto one output.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// lineWriter prefixes every complete line, so interleaved instances stay readable.
type lineWriter struct {
	prefix string
	w      io.Writer
	mu     sync.Mutex
	buf    []byte
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		idx := bytes.IndexByte(l.buf, '\n')
		if idx < 0 {
			break
		}
		line := append([]byte(l.prefix), l.buf[:idx+1]...)
		l.buf = l.buf[idx+1:]
		if _, err := l.w.Write(line); err != nil {
			return len(p), nil // a broken log sink must not break the function
		}
	}
	return len(p), nil
}

func (l *lineWriter) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		_, _ = l.w.Write(append(append([]byte(l.prefix), l.buf...), '\n'))
		l.buf = nil
	}
}
