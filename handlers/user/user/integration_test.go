package user_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/handlers/user/user"
	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/apigw"
	"github.com/idemkit/idemkit/idempotent/dynamostore"
	"github.com/idemkit/idemkit/internal/ddblocal/ddbtest"
	"github.com/idemkit/idemkit/internal/testwait"
)

// The integration tests run against DynamoDB Local (started by ddbtest for this binary); they never skip.
func TestMain(m *testing.M) { os.Exit(ddbtest.Run(m)) }

// createUsersTable creates a table shaped like UsersTable in template.yaml.
func createUsersTable(t *testing.T, client *dynamodb.Client) string {
	t.Helper()
	return ddbtest.Table(t, client, "users")
}

func getRaw(t *testing.T, client *dynamodb.Client, table, id string) map[string]types.AttributeValue {
	t.Helper()
	out, err := client.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: aws.String(table), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: id}},
	})
	require.NoError(t, err)
	return out.Item
}

func onDynamoDB(t *testing.T, client *dynamodb.Client, table string, optFns ...func(*user.Options)) *harness {
	h := &harness{}
	h.svc = user.New(client, table, append([]func(*user.Options){func(o *user.Options) {
		o.Now = func() time.Time { return testNow }
		o.Logger = slog.New(slog.DiscardHandler)
	}}, optFns...)...)
	return h
}

func TestDynamoDBEmailUniqueness(t *testing.T) {
	client := ddbtest.Client(t)
	table := createUsersTable(t, client)
	h := onDynamoDB(t, client, table)

	created := register(t, h, "Alice", "Alice@Example.com")
	require.Equal(t, http.StatusCreated, created.StatusCode, created.Body)
	var u user.User
	require.NoError(t, json.Unmarshal([]byte(created.Body), &u))

	reservation := getRaw(t, client, table, "EMAIL#alice@example.com")
	require.NotEmpty(t, reservation)
	assert.Equal(t, u.ID, reservation["user_id"].(*types.AttributeValueMemberS).Value)

	// DynamoDB Local's real cancellation reasons decide the 409.
	for _, dup := range []string{"alice@example.com", "ALICE@EXAMPLE.COM"} {
		p := problem(t, register(t, h, "Mallory", dup), http.StatusConflict)
		assert.Equal(t, "E-mail address already registered", p["title"])
	}

	get := loadEvent(t, "testdata/get.json")
	get.PathParameters = map[string]string{"id": u.ID}
	resp := h.do(t, get)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.JSONEq(t, created.Body, resp.Body)

	get.PathParameters = map[string]string{"id": user.UserID("nobody")}
	problem(t, h.do(t, get), http.StatusNotFound)
}

func TestDynamoDBSameScopeRetry(t *testing.T) {
	client := ddbtest.Client(t)
	table := createUsersTable(t, client)
	h := onDynamoDB(t, client, table, scope("scope-1"))

	first := register(t, h, "Alice", "alice@example.com")
	require.Equal(t, http.StatusCreated, first.StatusCode, first.Body)
	second := register(t, h, "Alice", "ALICE@example.com")
	require.Equal(t, http.StatusCreated, second.StatusCode, second.Body)
	assert.Equal(t, first.Body, second.Body)

	problem(t, register(t, h, "Alice", "alice.other@example.com"), http.StatusUnprocessableEntity)
	assert.Empty(t, getRaw(t, client, table, "EMAIL#alice.other@example.com"), "a cancelled transaction reserves nothing")
	problem(t, register(t, h, "Alicia", "alice@example.com"), http.StatusUnprocessableEntity)
}

func TestDynamoDBConcurrentRegistrationsOfOneAddress(t *testing.T) {
	client := ddbtest.Client(t)
	table := createUsersTable(t, client)
	h := onDynamoDB(t, client, table)

	const n = 12
	resps := make([]int, n)
	bodies := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ev := loadEvent(t, "testdata/create.json")
			ev.Body = fmt.Sprintf(`{"name":"User %d","email":"Race@Example.com"}`, i)
			resp, err := h.svc.Handle(context.Background(), ev)
			if err == nil {
				resps[i], bodies[i] = resp.StatusCode, resp.Body
			}
		}()
	}
	testwait.Group(t, &wg, "the concurrent sign-ups")
	winners := 0
	var winner user.User
	for i, s := range resps {
		switch s {
		case http.StatusCreated:
			winners++
			require.NoError(t, json.Unmarshal([]byte(bodies[i]), &winner))
		case http.StatusConflict, http.StatusServiceUnavailable: // taken, or contended transaction: retryable
		default:
			t.Errorf("unexpected status %d: %s", s, bodies[i])
		}
	}
	require.Equal(t, 1, winners, "exactly one registration wins: %v", resps)
	assert.Equal(t, winner.ID, getRaw(t, client, table, "EMAIL#race@example.com")["user_id"].(*types.AttributeValueMemberS).Value)
}

// TestDynamoDBWiredWithIdempotency wires the service as its main will: apigw.REST with an optional key, the user
// ID derived from idempotent.FromContext.
func TestDynamoDBWiredWithIdempotency(t *testing.T) {
	client := ddbtest.Client(t)
	table := createUsersTable(t, client)
	idemTable := ddbtest.UniqueName(t, "idem")
	require.NoError(t, dynamostore.CreateTable(context.Background(), client, idemTable))
	svc := user.New(client, table, func(o *user.Options) {
		o.Logger = slog.New(slog.DiscardHandler)
		o.ScopeID = func(ctx context.Context) (string, bool) {
			inv, ok := idempotent.FromContext(ctx)
			return inv.ID, ok
		}
	})
	handler := apigw.REST(idempotent.New(dynamostore.New(client, idemTable)), svc.Handle, apigw.WithKeyOptional())

	created, err := handler(context.Background(), loadEvent(t, "../../../events/user-create.json"))
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, created.StatusCode, created.Body)
	replay, err := handler(context.Background(), loadEvent(t, "../../../events/user-create.json"))
	require.NoError(t, err)
	assert.Equal(t, "true", replay.Headers["Idempotent-Replayed"])
	assert.Equal(t, created.Body, replay.Body)

	dup, err := handler(context.Background(), loadEvent(t, "../../../events/user-duplicate-email.json"))
	require.NoError(t, err)
	assert.Equal(t, http.StatusConflict, dup.StatusCode, "no key: uniqueness still holds")
}
