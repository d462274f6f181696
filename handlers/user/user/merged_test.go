package user_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/handlers/user/user"
	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/apigw"
	"github.com/idemkit/idemkit/idempotent/dynamostore"
	"github.com/idemkit/idemkit/internal/ddblocal/ddbtest"
)

// roundTrips counts DynamoDB requests at the SDK's HTTP client, per operation.
type roundTrips struct {
	next dynamodb.HTTPClient
	mu   sync.Mutex
	n    map[string]int
}

func (c *roundTrips) Do(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.n[strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "DynamoDB_20120810.")]++
	c.mu.Unlock()
	return c.next.Do(r)
}

// take returns the counts since the last take.
func (c *roundTrips) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = map[string]int{}
	return n
}

// mergedFunction is the user function wired as its main does: apigw.REST with an optional key and the merged
// claim, the registration handed to the engine, on DynamoDB Local through a counting client.
type mergedFunction struct {
	handle  func(context.Context, events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error)
	calls   *roundTrips
	client  *dynamodb.Client
	users   string
	idempo  string
	service *user.Service
}

func newMergedFunction(t *testing.T) *mergedFunction {
	t.Helper()
	calls := &roundTrips{n: map[string]int{}}
	client := dynamodb.New(ddbtest.Client(t).Options(), func(o *dynamodb.Options) {
		calls.next = o.HTTPClient
		o.HTTPClient = calls
	})
	f := &mergedFunction{calls: calls, client: client, users: createUsersTable(t, ddbtest.Client(t)), idempo: ddbtest.UniqueName(t, "idem")}
	require.NoError(t, dynamostore.CreateTable(context.Background(), ddbtest.Client(t), f.idempo))
	f.service = user.New(client, f.users, func(o *user.Options) {
		o.Logger = slog.New(slog.DiscardHandler)
		o.ScopeID = func(ctx context.Context) (string, bool) {
			inv, ok := idempotent.FromContext(ctx)
			return inv.ID, ok
		}
		o.Effect = func(ctx context.Context, w types.TransactWriteItem) bool { return idempotent.AddEffect(ctx, w) }
	})
	engine := idempotent.New(dynamostore.New(client, f.idempo), idempotent.WithWait(idempotent.DefaultWait),
		idempotent.WithLogger(slog.New(slog.DiscardHandler)))
	f.handle = apigw.REST(engine, f.service.Handle, apigw.WithKeyOptional(), apigw.WithMergedClaim())
	return f
}

func (f *mergedFunction) post(t *testing.T, key, name, email string) events.APIGatewayProxyResponse {
	t.Helper()
	resp, err := f.handle(context.Background(), createEvent(t, key, name, email))
	require.NoError(t, err)
	return resp
}

func createEvent(t *testing.T, key, name, email string) events.APIGatewayProxyRequest {
	t.Helper()
	ev := loadEvent(t, "../../../events/user-create.json")
	b, err := json.Marshal(map[string]string{"name": name, "email": email})
	require.NoError(t, err)
	ev.Body = string(b)
	delete(ev.Headers, "Idempotency-Key")
	delete(ev.MultiValueHeaders, "Idempotency-Key")
	if key != "" {
		ev.Headers["Idempotency-Key"] = key
	}
	return ev
}

// TestMergedRegistration: with a key, a registration is one DynamoDB call, a duplicate one, and the conflicts the
// registration's own conditions find are answered as without a key.
func TestMergedRegistration(t *testing.T) {
	f := newMergedFunction(t)

	created := f.post(t, "key-1", "Alice", "alice@example.com")
	require.Equal(t, http.StatusCreated, created.StatusCode, created.Body)
	assert.Equal(t, "false", created.Headers["Idempotent-Replayed"])
	assert.Equal(t, map[string]int{"TransactWriteItems": 1}, f.calls.take(), "a first request is one call")
	var u user.User
	require.NoError(t, json.Unmarshal([]byte(created.Body), &u))
	assert.NotEmpty(t, getRaw(t, ddbtest.Client(t), f.users, u.ID), "the user was written")
	assert.NotEmpty(t, getRaw(t, ddbtest.Client(t), f.users, user.EmailKey("alice@example.com")), "and the address reserved")

	replay := f.post(t, "key-1", "Alice", "alice@example.com")
	require.Equal(t, http.StatusCreated, replay.StatusCode, replay.Body)
	assert.Equal(t, "true", replay.Headers["Idempotent-Replayed"])
	assert.Equal(t, created.Body, replay.Body)
	assert.Equal(t, map[string]int{"TransactWriteItems": 1}, f.calls.take(), "a duplicate is one call")

	problem(t, f.post(t, "key-1", "Bob", "bob@example.com"), http.StatusUnprocessableEntity)
	assert.Equal(t, map[string]int{"TransactWriteItems": 1}, f.calls.take(), "a mismatch is one call")
	assert.Empty(t, getRaw(t, ddbtest.Client(t), f.users, user.EmailKey("bob@example.com")))

	// Another key for a registered address: the merged transaction is cancelled by the reservation, and the
	// service's own transaction answers 409 email-taken, which is not recorded.
	p := problem(t, f.post(t, "key-2", "Mallory", "ALICE@example.com"), http.StatusConflict)
	assert.Equal(t, "E-mail address already registered", p["title"])
	assert.Equal(t, map[string]int{"TransactWriteItems": 2}, f.calls.take(), "the merged write, then the service's own")
	p = problem(t, f.post(t, "key-2", "Mallory", "ALICE@example.com"), http.StatusConflict)
	assert.Equal(t, "E-mail address already registered", p["title"], "the same answer again")
	f.calls.take()

	// Without a key nothing changes: the service writes itself.
	problem(t, f.post(t, "", "Alice", "alice@example.com"), http.StatusConflict)
	assert.Equal(t, map[string]int{"TransactWriteItems": 1}, f.calls.take())
}

// TestMergedRegistrationAfterLostRecord: the user of a key exists but its idempotency record is gone (expired, or
// deleted by an operator): the merged write fails on the user's condition, and the service answers with the
// existing user, or 422 for other details.
func TestMergedRegistrationAfterLostRecord(t *testing.T) {
	f := newMergedFunction(t)
	created := f.post(t, "key-1", "Alice", "alice@example.com")
	require.Equal(t, http.StatusCreated, created.StatusCode, created.Body)
	_, err := ddbtest.Client(t).DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: &f.idempo})
	require.NoError(t, err)
	require.NoError(t, dynamostore.CreateTable(context.Background(), ddbtest.Client(t), f.idempo))

	again := f.post(t, "key-1", "Alice", "alice@example.com")
	require.Equal(t, http.StatusCreated, again.StatusCode, again.Body)
	assert.Equal(t, created.Body, again.Body, "the existing user")
	problem(t, f.post(t, "key-1", "Alicia", "alice@example.com"), http.StatusUnprocessableEntity)
}

// TestMergedConcurrentDuplicates: 20 concurrent requests with one key create one user, and all get one identical
// answer.
func TestMergedConcurrentDuplicates(t *testing.T) {
	const n = 20
	f := newMergedFunction(t)
	resps := make([]events.APIGatewayProxyResponse, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resps[i], errs[i] = f.handle(context.Background(), createEvent(t, "burst", "Alice", "alice@example.com"))
		}()
	}
	close(start)
	wg.Wait()
	replayed := 0
	for i := range n {
		require.NoError(t, errs[i], "request %d", i)
		require.Equal(t, http.StatusCreated, resps[i].StatusCode, "request %d: %s", i, resps[i].Body)
		assert.Equal(t, resps[0].Body, resps[i].Body, "request %d: one identical answer", i)
		if resps[i].Headers["Idempotent-Replayed"] == "true" {
			replayed++
		}
	}
	assert.Equal(t, n-1, replayed, "one request's answer, replayed to the others")
	var u user.User
	require.NoError(t, json.Unmarshal([]byte(resps[0].Body), &u))
	reservation := getRaw(t, ddbtest.Client(t), f.users, user.EmailKey("alice@example.com"))
	assert.Equal(t, u.ID, reservation["user_id"].(*types.AttributeValueMemberS).Value, "one user holds the address")
	calls := f.calls.take()
	t.Logf("%d concurrent duplicates: DynamoDB calls %v", n, calls)
	assert.GreaterOrEqual(t, calls["TransactWriteItems"], n, "each request made its merged write")
	assert.Zero(t, calls["PutItem"]+calls["GetItem"], "nobody claimed first or read: the cancellation reasons carried the answer")
}
