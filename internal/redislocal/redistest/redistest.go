// Package redistest gives integration tests a Redis server to talk to: the one at $IDEMKIT_TEST_REDIS_URL when
// set, otherwise one redis-server started lazily for the whole test binary (persistence off) and stopped by Run.
// Tests that cannot get one fail: they never skip, so a green run always means the Redis code ran.
//
// Every package that uses it declares
//
//	func TestMain(m *testing.M) { os.Exit(redistest.Run(m)) }
//
// and in its tests
//
//	client := redistest.Client(t)
//	prefix := redistest.UniquePrefix(t) // keys of this test only
package redistest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/idemkit/idemkit/internal/redislocal"
)

// EnvURL names the variable that points the tests at an already running server (redis:// or rediss:// URL)
// instead of starting one.
const EnvURL = "IDEMKIT_TEST_REDIS_URL"

var (
	once     sync.Once
	mu       sync.Mutex
	inst     *redislocal.Instance
	opts     *redis.Options
	client   *redis.Client
	setupErr error
)

func setup() {
	url := os.Getenv(EnvURL)
	if url == "" {
		i, err := redislocal.Start(context.Background(), redislocal.Options{})
		if err != nil {
			setupErr = fmt.Errorf("redistest: start redis-server (or set %s): %w", EnvURL, err)
			return
		}
		mu.Lock()
		inst = i
		mu.Unlock()
		url = i.URL()
	}
	o, err := redis.ParseURL(url)
	if err != nil {
		setupErr = fmt.Errorf("redistest: %s: %w", EnvURL, err)
		return
	}
	opts = o
	client = redis.NewClient(Options(nil))
}

// Run runs the tests and then stops the server this binary started, if any. Use it from TestMain:
// os.Exit(redistest.Run(m)).
func Run(m *testing.M) int {
	code := m.Run()
	mu.Lock()
	defer mu.Unlock()
	if client != nil {
		_ = client.Close()
	}
	if inst != nil {
		if err := inst.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "redistest:", err)
		}
		inst = nil
	}
	return code
}

// Options returns a copy of the client options for the test server, or nil before the server is set up; tests
// call Addr or Client first. A nil t is allowed only after that.
func Options(t testing.TB) *redis.Options {
	if t != nil {
		t.Helper()
		Addr(t)
	}
	if opts == nil {
		return nil
	}
	o := *opts
	return &o
}

// Addr returns the server's host:port, starting the server on first use; it fails the test when none can be had.
func Addr(t testing.TB) string {
	t.Helper()
	once.Do(setup)
	if setupErr != nil {
		t.Fatal(setupErr)
	}
	return opts.Addr
}

// Client returns a client for the server, shared by the tests of the binary.
func Client(t testing.TB) *redis.Client {
	t.Helper()
	Addr(t)
	return client
}

// NewClient returns a client of its own for the test, with the server's options edited by optFns (hooks, timeouts,
// another address such as a fault proxy's). It is closed when the test ends.
func NewClient(t testing.TB, optFns ...func(*redis.Options)) *redis.Client {
	t.Helper()
	o := Options(t)
	for _, fn := range optFns {
		fn(o)
	}
	c := redis.NewClient(o)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

var unsafeChars = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

// UniquePrefix returns a key prefix that names the test and is unique even when several test binaries share a
// server, ending in ":".
func UniquePrefix(t testing.TB) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := unsafeChars.ReplaceAllString(t.Name(), "_")
	if len(name) > 80 {
		name = name[:80]
	}
	return "test:" + name + ":" + hex.EncodeToString(b[:]) + ":"
}

// SplitRESP is a bufio.SplitFunc that yields one client request at a time from a RESP byte stream: a multi-bulk
// array of bulk strings (what every client library sends), or an inline command line. It lets a TCP fault proxy
// (faultinject.TCPProxy) act on whole commands.
func SplitRESP(data []byte, atEOF bool) (advance int, token []byte, err error) {
	if len(data) == 0 {
		return 0, nil, nil
	}
	if data[0] != '*' {
		if i := bytes.Index(data, []byte("\r\n")); i >= 0 {
			return i + 2, data[:i+2], nil
		}
		return more(atEOF)
	}
	n, pos, ok, err := readLen(data, 0)
	if !ok || err != nil {
		return 0, nil, errOr(err, atEOF)
	}
	for range n {
		if pos >= len(data) {
			return more(atEOF)
		}
		if data[pos] != '$' {
			return 0, nil, fmt.Errorf("redistest: RESP request element starts with %q, want '$'", data[pos])
		}
		size, next, ok, err := readLen(data, pos)
		if !ok || err != nil {
			return 0, nil, errOr(err, atEOF)
		}
		pos = next + size + 2
		if pos > len(data) {
			return more(atEOF)
		}
	}
	return pos, data[:pos], nil
}

// readLen reads the decimal after the type byte at data[at] up to CRLF; next is the index after the CRLF.
func readLen(data []byte, at int) (n, next int, ok bool, err error) {
	i := bytes.Index(data[at:], []byte("\r\n"))
	if i < 0 {
		return 0, 0, false, nil
	}
	n, err = strconv.Atoi(string(data[at+1 : at+i]))
	if err != nil || n < 0 {
		return 0, 0, false, fmt.Errorf("redistest: bad RESP length %q", data[at+1:at+i])
	}
	return n, at + i + 2, true, nil
}

func more(atEOF bool) (int, []byte, error) {
	if atEOF {
		return 0, nil, errors.New("redistest: truncated RESP request")
	}
	return 0, nil, nil
}

func errOr(err error, atEOF bool) error {
	if err != nil {
		return err
	}
	_, _, err = more(atEOF)
	return err
}

// Args returns the arguments of a request that SplitRESP yielded, the command name first; nil for an inline
// command.
func Args(req []byte) [][]byte {
	if len(req) == 0 || req[0] != '*' {
		return nil
	}
	n, pos, ok, err := readLen(req, 0)
	if !ok || err != nil {
		return nil
	}
	args := make([][]byte, 0, n)
	for range n {
		size, next, ok, err := readLen(req, pos)
		if !ok || err != nil || next+size > len(req) {
			return nil
		}
		args = append(args, req[next:next+size])
		pos = next + size + 2
	}
	return args
}

var _ bufio.SplitFunc = SplitRESP
