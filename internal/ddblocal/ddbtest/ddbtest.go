// Package ddbtest gives integration tests a DynamoDB to talk to: the endpoint in
// $IDEMKIT_TEST_DYNAMODB_ENDPOINT when set, otherwise one DynamoDB Local started
// lazily for the whole test binary. Tests that cannot get one fail: they never skip,
// so a green run always means the DynamoDB code ran.
//
// Every package that uses it declares
//
//	func TestMain(m *testing.M) { os.Exit(ddbtest.Run(m)) }
//
// and in its tests
//
//	client := ddbtest.Client(t)
//	table := ddbtest.UniqueName(t, "idem")
package ddbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/idemkit/idemkit/internal/ddblocal"
)

// EnvEndpoint names the variable that points the tests at an already running
// DynamoDB Local (e.g. the one of `make db` or a CI service) instead of starting one.
const EnvEndpoint = "IDEMKIT_TEST_DYNAMODB_ENDPOINT"

var (
	once     sync.Once
	mu       sync.Mutex
	inst     *ddblocal.Instance
	endpoint string
	client   *dynamodb.Client
	setupErr error
)

func setup() {
	ctx := context.Background()
	endpoint = os.Getenv(EnvEndpoint)
	if endpoint == "" {
		i, err := ddblocal.Start(ctx, ddblocal.Options{})
		if err != nil {
			setupErr = fmt.Errorf("ddbtest: start DynamoDB Local (or set %s): %w", EnvEndpoint, err)
			return
		}
		mu.Lock()
		inst = i
		mu.Unlock()
		endpoint = i.Endpoint()
	}
	client, setupErr = ddblocal.NewClient(ctx, endpoint)
}

// Run runs the tests and then stops the DynamoDB Local this binary started, if any.
// Use it from TestMain: os.Exit(ddbtest.Run(m)).
func Run(m *testing.M) int {
	code := m.Run()
	mu.Lock()
	defer mu.Unlock()
	if inst != nil {
		if err := inst.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "ddbtest:", err)
		}
		inst = nil
	}
	return code
}

// Endpoint returns the DynamoDB endpoint for the tests, starting DynamoDB Local on
// first use; it fails the test when none can be had.
func Endpoint(t testing.TB) string {
	t.Helper()
	once.Do(setup)
	if setupErr != nil {
		t.Fatal(setupErr)
	}
	return endpoint
}

// Client returns a DynamoDB client for Endpoint, shared by the tests of the binary.
func Client(t testing.TB) *dynamodb.Client {
	t.Helper()
	Endpoint(t)
	return client
}

var unsafeChars = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

// UniqueName returns a valid DynamoDB table name (3-255 characters of
// [a-zA-Z0-9_.-]) that starts with prefix, names the test, and is unique even when
// several test binaries share one endpoint.
func UniqueName(t testing.TB, prefix string) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	name := unsafeChars.ReplaceAllString(prefix+"-"+t.Name(), "_")
	const maxBase = 255 - 1 - 2*len(b)
	if len(name) > maxBase {
		name = name[:maxBase]
	}
	return name + "-" + hex.EncodeToString(b[:])
}
