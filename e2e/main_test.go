package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/stretchr/testify/require"
)

// Set once by TestMain before any test runs, read-only afterwards.
var (
	root       string // module root (directory of go.mod)
	runnerBin  string // the built lambdalocal
	baseURL    string // http://127.0.0.1:<api port>
	dbPort     int    // DynamoDB Local started by the runner
	dbEndpoint string // http://127.0.0.1:<dbPort>
	httpClient = &http.Client{Timeout: 40 * time.Second}
	// runnerOutput is everything lambdalocal serve prints; its "[Fn#n] ready in ... (pid N)" lines give the
	// instances' PIDs and cold starts to the load benchmarks.
	runnerOutput *syncBuffer
)

// syncBuffer collects the runner's output; exec copies into it from its own goroutine.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	start := time.Now()
	fail := func(format string, args ...any) int {
		fmt.Fprintf(os.Stderr, "e2e: "+format+"\n", args...)
		return 1
	}
	var err error
	if root, err = moduleRoot(); err != nil {
		return fail("%v", err)
	}
	tmp, err := os.MkdirTemp("", "idemkit-e2e-")
	if err != nil {
		return fail("temp dir: %v", err)
	}
	defer os.RemoveAll(tmp)

	runnerBin = filepath.Join(tmp, "lambdalocal")
	build := exec.Command("go", "build", "-o", runnerBin, "./cmd/lambdalocal")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return fail("go build ./cmd/lambdalocal: %v\n%s", err, out)
	}

	apiPort, dbp, err := freePorts()
	if err != nil {
		return fail("free ports: %v", err)
	}
	dbPort = dbp
	baseURL = fmt.Sprintf("http://127.0.0.1:%d", apiPort)
	dbEndpoint = fmt.Sprintf("http://127.0.0.1:%d", dbPort)

	out := &syncBuffer{}
	runnerOutput = out
	srv := exec.Command(runnerBin, "serve",
		"-template", filepath.Join(root, "template.yaml"),
		"-addr", fmt.Sprintf("127.0.0.1:%d", apiPort),
		"-db-port", strconv.Itoa(dbPort))
	srv.Dir = root
	srv.Env = runnerEnv()
	srv.Stdout, srv.Stderr = out, out
	// Wait returns at most this long after the runner exits even when a child it left behind (DynamoDB Local's
	// JVM, a function process) still holds the output pipe: no stop can hang the test binary.
	srv.WaitDelay = 10 * time.Second
	if err := srv.Start(); err != nil {
		return fail("start lambdalocal serve: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- srv.Wait() }()
	stop := func() {
		_ = srv.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			fmt.Fprintf(os.Stderr, "e2e: lambdalocal (pid %d) ignored SIGINT for 15s; killing it\n", srv.Process.Pid)
			_ = srv.Process.Kill()
			<-exited
		}
	}

	if err := waitReady(exited, 120*time.Second); err != nil {
		stop()
		return fail("lambdalocal serve did not come up: %v\n--- lambdalocal output ---\n%s", err, out.String())
	}
	fmt.Fprintf(os.Stderr, "e2e: lambdalocal serving on %s (DynamoDB Local on %s) after %s\n",
		baseURL, dbEndpoint, time.Since(start).Round(time.Millisecond))

	code := m.Run()

	// Every raw idempotency key sent by any test (HTTP and events) must be absent from every table; the
	// concurrency test checks the keys sent up to then, this catches the ones sent after it.
	if code == 0 {
		secrets := secretsToFind()
		if leaks, err := findSecrets(context.Background(), secrets); err != nil {
			code = fail("final scan of the tables: %v", err)
		} else if len(leaks) > 0 {
			code = fail("stored items contain secrets or raw idempotency keys:\n%s", strings.Join(leaks, "\n"))
		} else {
			fmt.Fprintf(os.Stderr, "e2e: final scan of %v: no card number, CVV or any of %d raw keys stored\n",
				allTables, len(secrets.substrings)-2)
		}
	}

	stop()
	// Nothing card-like in what the functions and the runner logged, and no AWS SDK warning (each duplicate used
	// to log one).
	if code == 0 {
		log := out.String()
		if found := cardsInLog(log); len(found) > 0 {
			code = fail("the logs hold card data:\n%s", strings.Join(found, "\n"))
		}
		if found := sdkWarnings(log); len(found) > 0 {
			code = fail("the AWS SDK warned %d times, first: %s", len(found), found[0])
		}
	}
	if code != 0 {
		fmt.Fprintf(os.Stderr, "--- lambdalocal output ---\n%s\n", out.String())
	}
	// The runner started DynamoDB Local, so it must have stopped it too.
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", dbPort), 500*time.Millisecond); err == nil {
		c.Close()
		code = fail("DynamoDB Local started by lambdalocal still listens on port %d after the runner stopped", dbPort)
	}
	return code
}

// runnerEnv is the test's environment without what would make the runner reuse another DynamoDB or listen
// elsewhere.
func runnerEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "AWS_ENDPOINT_URL_DYNAMODB=") || strings.HasPrefix(kv, "AWS_ENDPOINT_URL=") ||
			strings.HasPrefix(kv, "PORT=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// freePorts returns two distinct free loopback ports (held open together so they differ).
func freePorts() (int, int, error) {
	a, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, 0, err
	}
	defer a.Close()
	b, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, 0, err
	}
	defer b.Close()
	return a.Addr().(*net.TCPAddr).Port, b.Addr().(*net.TCPAddr).Port, nil
}

// waitReady polls the API until it gives any HTTP response, the runner exits, or the deadline passes.
func waitReady(exited <-chan error, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	probe := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := probe.Get(baseURL + "/payments/pay_x")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no HTTP answer within %s (last error: %v)", timeout, err)
		}
		select {
		case err := <-exited:
			return fmt.Errorf("lambdalocal exited early: %v", err)
		case <-tick.C:
		}
	}
}

// ---- HTTP helpers ----

type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// request sends one request. header values are set as given (map keys verbatim, so a test can send a
// lower-case name or several values).
func request(t testing.TB, method, path string, header http.Header, body string) response {
	t.Helper()
	r, err := doRequest(method, path, header, body)
	require.NoError(t, err, "%s %s", method, path)
	return r
}

// doRequest is request for goroutines other than the test's own (no FailNow there).
func doRequest(method, path string, header http.Header, body string) (response, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, baseURL+path, rd)
	if err != nil {
		return response{}, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, vs := range header {
		req.Header[k] = append([]string(nil), vs...)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	return response{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// withKey is a header with one Idempotency-Key value; the key is remembered for the stored-data checks.
func withKey(key string) http.Header {
	rememberKey(key)
	return http.Header{"Idempotency-Key": {key}}
}

var (
	keysMu   sync.Mutex
	keysSent = map[string]bool{}
)

func rememberKey(key string) {
	if len(key) < 8 { // short or empty keys are no useful substring to search for
		return
	}
	keysMu.Lock()
	defer keysMu.Unlock()
	keysSent[key] = true
}

func newKey(t testing.TB) string {
	t.Helper()
	b := make([]byte, 16)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return "e2e-" + hex.EncodeToString(b)
}

// ---- DynamoDB helpers ----

func dynamoClient() *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(dbEndpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("local", "local", ""),
	})
}
