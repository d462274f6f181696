package payment_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/handlers/payment/payment"
	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/apigw"
	"github.com/idemkit/idemkit/idempotent/dynamostore"
	"github.com/idemkit/idemkit/internal/ddblocal/ddbtest"
	"github.com/idemkit/idemkit/internal/testwait"
)

// The integration tests run against DynamoDB Local, which ddbtest starts for this test binary (or the endpoint in
// IDEMKIT_TEST_DYNAMODB_ENDPOINT). They never skip.
func TestMain(m *testing.M) { os.Exit(ddbtest.Run(m)) }

// createPaymentsTable creates a table shaped like PaymentsTable in template.yaml.
func createPaymentsTable(t *testing.T, client *dynamodb.Client) string {
	t.Helper()
	return ddbtest.Table(t, client, "payments")
}

func invoke(t *testing.T, h func(context.Context, events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error), ev events.APIGatewayProxyRequest) events.APIGatewayProxyResponse {
	t.Helper()
	resp, err := h(context.Background(), ev)
	require.NoError(t, err)
	return resp
}

func TestDynamoDBPaymentLifecycle(t *testing.T) {
	client := ddbtest.Client(t)
	tableName := createPaymentsTable(t, client)
	proc := payment.NewSimulatedProcessor()
	svc := payment.New(client, tableName, scope("scope-1"), func(o *payment.Options) {
		o.Processor = proc
		o.Now = func() time.Time { return testNow }
	})

	ev := createEvent(t)
	ev.Body = bodyWith(t, func(b map[string]any) { b["card_number"] = "3782 822463 10005"; b["cvv"] = "7391" })
	created := invoke(t, svc.Handle, ev)
	require.Equal(t, http.StatusCreated, created.StatusCode, created.Body)
	id := payment.PaymentID("scope-1")
	assert.JSONEq(t, `{"id":"`+id+`","amount":2000,"currency":"usd","status":"succeeded","card":{"brand":"amex","last4":"0005"},"description":"Order #1001","created_at":"2026-11-22T12:00:00Z"}`, created.Body)

	// What DynamoDB holds: no card number, no CVV.
	out, err := client.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: aws.String(tableName), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: id}},
	})
	require.NoError(t, err)
	require.NotEmpty(t, out.Item)
	for _, s := range itemStrings(out.Item) {
		assert.NotContains(t, s, "378282246310005")
		assert.NotContains(t, s, "37828224")
		assert.NotEqual(t, "7391", s)
	}

	// The same request again (its idempotency record gone): the stored payment, no second charge.
	again := invoke(t, svc.Handle, ev)
	require.Equal(t, http.StatusCreated, again.StatusCode)
	assert.Equal(t, created.Body, again.Body)
	assert.Equal(t, 1, proc.Charges(), "the processor recognised the reference")

	// The same scope with another amount.
	other := createEvent(t)
	other.Body = bodyWith(t, func(b map[string]any) { b["amount"] = 1 })
	problem(t, invoke(t, svc.Handle, other), http.StatusUnprocessableEntity)

	get := loadEvent(t, "testdata/get.json")
	get.PathParameters = map[string]string{"id": id}
	resp := invoke(t, svc.Handle, get)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.JSONEq(t, created.Body, resp.Body)

	get.PathParameters = map[string]string{"id": payment.PaymentID("nobody")}
	problem(t, invoke(t, svc.Handle, get), http.StatusNotFound)
}

func TestDynamoDBConditionalWriteStopsASecondPayment(t *testing.T) {
	client := ddbtest.Client(t)
	tableName := createPaymentsTable(t, client)
	proc := payment.NewSimulatedProcessor()
	direct := payment.DirectCommitter{DB: client}
	// Between this invocation's read and its write, another invocation of the same request stores the payment.
	racer := payment.New(client, tableName, scope("scope-1"), func(o *payment.Options) { o.Processor = proc })
	svc := payment.New(client, tableName, scope("scope-1"), func(o *payment.Options) {
		o.Processor = proc
		o.Committer = payment.CommitterFunc(func(ctx context.Context, w types.TransactWriteItem) error {
			first := invoke(t, racer.Handle, createEvent(t))
			require.Equal(t, http.StatusCreated, first.StatusCode, first.Body)
			return direct.Commit(ctx, w)
		})
	})
	resp := invoke(t, svc.Handle, createEvent(t))
	require.Equal(t, http.StatusCreated, resp.StatusCode, resp.Body)
	assert.Equal(t, 1, proc.Charges(), "both charged with one reference: one charge")

	// The real ConditionalCheckFailedException is what DirectCommitter maps to ErrConflict.
	put := types.TransactWriteItem{Put: &types.Put{
		TableName:                aws.String(tableName),
		Item:                     map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: payment.PaymentID("scope-1")}},
		ConditionExpression:      aws.String("attribute_not_exists(#id)"),
		ExpressionAttributeNames: map[string]string{"#id": "id"},
	}}
	require.ErrorIs(t, direct.Commit(context.Background(), put), payment.ErrConflict)
}

// TestDynamoDBWiredWithIdempotency wires the service the way its main will: the REST adapter and engine of
// package idempotent over dynamostore, the scope ID from idempotent.FromContext, and the payment write added to
// the transaction that completes the idempotency record.
func TestDynamoDBWiredWithIdempotency(t *testing.T) {
	client := ddbtest.Client(t)
	paymentsTable := createPaymentsTable(t, client)
	idemTable := ddbtest.UniqueName(t, "idem")
	require.NoError(t, dynamostore.CreateTable(context.Background(), client, idemTable))

	proc := payment.NewSimulatedProcessor()
	direct := payment.DirectCommitter{DB: client}
	svc := payment.New(client, paymentsTable, func(o *payment.Options) {
		o.Processor = proc
		o.ScopeID = func(ctx context.Context) (string, bool) {
			inv, ok := idempotent.FromContext(ctx)
			return inv.ID, ok
		}
		o.Committer = payment.CommitterFunc(func(ctx context.Context, w types.TransactWriteItem) error {
			if idempotent.AddEffect(ctx, w) {
				return nil // committed with the COMPLETED record
			}
			return direct.Commit(ctx, w)
		})
	})
	engine := idempotent.New(dynamostore.New(client, idemTable))
	handler := apigw.REST(engine, svc.Handle)

	created := invoke(t, handler, loadEvent(t, "../../../events/payment-create.json"))
	require.Equal(t, http.StatusCreated, created.StatusCode, created.Body)
	assert.Equal(t, "false", created.Headers["Idempotent-Replayed"])
	var rep payment.Payment
	require.NoError(t, json.Unmarshal([]byte(created.Body), &rep))
	out, err := client.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: aws.String(paymentsTable), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: rep.ID}},
	})
	require.NoError(t, err)
	assert.NotEmpty(t, out.Item, "the payment committed with the idempotency record")

	replay := invoke(t, handler, loadEvent(t, "../../../events/payment-replay.json"))
	require.Equal(t, http.StatusCreated, replay.StatusCode)
	assert.Equal(t, "true", replay.Headers["Idempotent-Replayed"])
	assert.Equal(t, created.Body, replay.Body)
	assert.Equal(t, created.Headers["Location"], replay.Headers["Location"])

	mismatch := invoke(t, handler, loadEvent(t, "../../../events/payment-mismatch.json"))
	assert.Equal(t, http.StatusUnprocessableEntity, mismatch.StatusCode)

	declined := invoke(t, handler, loadEvent(t, "../../../events/payment-declined.json"))
	assert.Equal(t, http.StatusPaymentRequired, declined.StatusCode)
	declinedAgain := invoke(t, handler, loadEvent(t, "../../../events/payment-declined.json"))
	assert.Equal(t, http.StatusPaymentRequired, declinedAgain.StatusCode)
	assert.Equal(t, "true", declinedAgain.Headers["Idempotent-Replayed"], "the decline is recorded")
	assert.Equal(t, 2, proc.Calls(), "one charge and one decline, nothing re-run")

	noKey := loadEvent(t, "../../../events/payment-create.json")
	delete(noKey.Headers, "Idempotency-Key")
	delete(noKey.MultiValueHeaders, "Idempotency-Key")
	assert.Equal(t, http.StatusBadRequest, invoke(t, handler, noKey).StatusCode)

	// Concurrent duplicates of a new request: one charge, one payment.
	ev := loadEvent(t, "../../../events/payment-create.json")
	ev.Headers["Idempotency-Key"] = "concurrent-key"
	ev.MultiValueHeaders["Idempotency-Key"] = []string{"concurrent-key"}
	var wg sync.WaitGroup
	statuses := make([]int, 8)
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := handler(context.Background(), ev)
			if err == nil {
				statuses[i] = resp.StatusCode
			}
		}()
	}
	testwait.Group(t, &wg, "the concurrent payments")
	for _, s := range statuses {
		assert.Contains(t, []int{http.StatusCreated, http.StatusConflict}, s, "replayed 201 or 409 in progress")
	}
	assert.Equal(t, 2, proc.Charges(), "the first payment and the concurrent one")
	assert.Equal(t, 3, proc.Calls())
	assert.False(t, strings.Contains(created.Body, "4242424242424242"))
}
