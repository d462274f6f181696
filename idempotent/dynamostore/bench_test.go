package dynamostore_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/dynamostore"
	"github.com/idemkit/idemkit/idempotent/idempotenttest"
)

// benchBody and benchResp are the shared benchmarks' request body (about 1 KB) and response, benchResp in this
// package's resp type.
var (
	benchBody = idempotenttest.BenchBody
	benchResp = resp(idempotenttest.BenchResp)
)

// acceptAll is an API whose every PutItem succeeds at once, to measure the store's own work.
type acceptAll struct{ dynamostore.API }

func (acceptAll) PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	return &dynamodb.PutItemOutput{}, nil
}

// BenchmarkClaimInput measures what Claim does before the PutItem leaves for DynamoDB: the item and the condition.
func BenchmarkClaimInput(b *testing.B) {
	store := dynamostore.New(acceptAll{}, "tbl")
	ctx := context.Background()
	now := time.Now()
	c := idempotent.Claim{Now: now, Takeover: true, Record: idempotent.Record{
		ID: strings.Repeat("ab", 32), Fingerprint: strings.Repeat("cd", 32), Owner: strings.Repeat("ef", 16),
		LeaseEnd: now.Add(time.Minute), ExpiresAt: now.Add(24 * time.Hour),
	}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := store.Claim(ctx, c); err != nil {
			b.Fatal(err)
		}
	}
}

func total(counts map[string]int) int {
	n := 0
	for _, c := range counts {
		n += c
	}
	return n
}

// BenchmarkDynamoDB runs requests through the engine on DynamoDB Local and reports, beside the time of a request
// (ns/op, fingerprint included), the DynamoDB calls it made (calls/op, counted at the SDK's HTTP client, so
// retries would show) and two baselines timed in the same iterations with the benchmark timer stopped:
//
//   - bare-ns/op and ratio-vs-bare: the round trips the targets are stated against, a plain PutItem of a
//     similar item for each call of a first request and a consistent GetItem for a duplicate;
//   - same-call-ns/op and ratio-vs-same-call: the very calls the store makes (conditional PutItems returning
//     ALL_OLD, the duplicate's failing), sent bare. What separates the request from these is the Go code of the
//     engine and the store; what separates these from the first baseline is DynamoDB's own cost for the call.
//
// Targets: a first request makes 2 calls and takes at most 1.1 times two bare PutItems; a duplicate makes 1 call
// and takes at most 1.1 times a bare GetItem; in-progress and mismatch answers make 1 call; a duplicate served
// from the local cache makes none.
func BenchmarkDynamoDB(b *testing.B) {
	table := newTable(b)
	client, calls := countingClient(b)
	// The bare round trips go through a client wired exactly like the engine's, counted apart.
	bare, _ := countingClient(b)
	store := dynamostore.New(client, table)
	o := store.Options()
	ctx := context.Background()

	// Bare round trips: items shaped like the engine's INPROGRESS and COMPLETED records.
	str := func(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }
	num := func(n int64) types.AttributeValue {
		return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
	}
	fp, owner, data := idempotenttest.BenchFingerprint(), idempotenttest.BenchOwner, idempotenttest.BenchData(b)
	// item is shaped like the engine's records.
	item := func(id string, status idempotent.Status) map[string]types.AttributeValue {
		now := time.Now()
		it := map[string]types.AttributeValue{
			o.IDAttr: str(id), o.StatusAttr: str(status.String()), o.ExpirationAttr: num(now.Add(24 * time.Hour).Unix()),
			o.ValidationAttr: str(fp), o.OwnerAttr: str(owner),
		}
		if status == idempotent.StatusInProgress {
			it[o.InProgressExpirationAttr] = num(now.Add(time.Minute).UnixMilli())
		} else {
			it[o.DataAttr] = str(string(data))
		}
		return it
	}
	// put sends a PutItem on the bare client: plain, or with the claim's condition (the key is absent) or the
	// completion's (the record is INPROGRESS and ours), returning the old item when the condition fails.
	type condition int
	const (
		plain condition = iota
		absent
		fenced
	)
	put := func(b *testing.B, it map[string]types.AttributeValue, c condition, wantFail bool) {
		in := &dynamodb.PutItemInput{TableName: aws.String(table), Item: it}
		switch c {
		case absent:
			in.ConditionExpression = aws.String("attribute_not_exists(#id)")
			in.ExpressionAttributeNames = map[string]string{"#id": o.IDAttr}
		case fenced:
			in.ConditionExpression = aws.String("#status = :inprogress AND #owner = :owner")
			in.ExpressionAttributeNames = map[string]string{"#status": o.StatusAttr, "#owner": o.OwnerAttr}
			in.ExpressionAttributeValues = map[string]types.AttributeValue{":inprogress": str("INPROGRESS"), ":owner": str(owner)}
		}
		if c != plain {
			in.ReturnValuesOnConditionCheckFailure = types.ReturnValuesOnConditionCheckFailureAllOld
		}
		_, err := bare.PutItem(ctx, in)
		var ccf *types.ConditionalCheckFailedException
		if failed := errors.As(err, &ccf); failed != wantFail || (err != nil && !failed) {
			b.Fatalf("bare PutItem: %v", err)
		}
	}
	get := func(b *testing.B, id string) {
		out, err := bare.GetItem(ctx, &dynamodb.GetItemInput{
			TableName: aws.String(table), Key: map[string]types.AttributeValue{o.IDAttr: str(id)}, ConsistentRead: aws.Bool(true),
		})
		if err != nil || len(out.Item) == 0 {
			b.Fatalf("bare GetItem %s: %d attributes, %v", id, len(out.Item), err)
		}
	}
	// A request meeting a record: a consistent GetItem bare, the claim's failing PutItem as the store sends it.
	meeting := func(b *testing.B, id string) idempotenttest.Baseline {
		return idempotenttest.Baseline{
			Bare: func() { get(b, id) },
			Same: func() { put(b, item(id, idempotent.StatusInProgress), absent, true) },
		}
	}

	idempotenttest.RunEngineBench(b, idempotenttest.EngineBench{
		Store: store,
		Calls: calls.take,
		First: func(b *testing.B, key string) idempotenttest.Baseline {
			return idempotenttest.Baseline{
				Bare: func() {
					id := "bare-" + key
					put(b, item(id, idempotent.StatusInProgress), plain, false)
					put(b, item(id, idempotent.StatusCompleted), plain, false)
				},
				Same: func() {
					id := "same-" + key
					put(b, item(id, idempotent.StatusInProgress), absent, false)
					put(b, item(id, idempotent.StatusCompleted), fenced, false)
				},
			}
		},
		Duplicate:  meeting,
		InProgress: meeting,
		Mismatch:   meeting,
	})
}
