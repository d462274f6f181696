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
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

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

// Table creates an on-demand table with a string partition key "id" (the shape of the example service's tables),
// waits until it is ACTIVE and deletes it when the test ends. It returns the table's unique name.
func Table(t testing.TB, client *dynamodb.Client, prefix string) string {
	t.Helper()
	return TableWithKey(t, client, prefix, "id")
}

// TableWithKey is Table with the string partition key named key (the processor's ledger: "reference").
func TableWithKey(t testing.TB, client *dynamodb.Client, prefix, key string) string {
	t.Helper()
	name := UniqueName(t, prefix)
	ctx := context.Background()
	_, err := client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String(key), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String(key), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	})
	if err != nil {
		t.Fatalf("create table %s: %v", name, err)
	}
	if err := dynamodb.NewTableExistsWaiter(client).Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, time.Minute); err != nil {
		t.Fatalf("wait for table %s: %v", name, err)
	}
	t.Cleanup(func() {
		_, _ = client.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)})
	})
	return name
}
