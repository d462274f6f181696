package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// tableWait bounds the wait for a new table to become ACTIVE; ctx may end it sooner.
const tableWait = 5 * time.Minute

// CreateTable creates an idempotency table shaped for the Store that New(client, table, optFns...) returns: the
// partition key IDAttr (S), plus the sort key SortKeyAttr (S) in the sort-key layout, on-demand billing. It waits
// until the table is ACTIVE and enables TTL on ExpirationAttr. It is idempotent: an existing table is accepted
// when its key schema matches, and TTL is enabled when it is not yet. An existing table with another key schema,
// or with TTL on another attribute, is an error.
//
// The IAM actions it needs: dynamodb:CreateTable, dynamodb:DescribeTable, dynamodb:DescribeTimeToLive and
// dynamodb:UpdateTimeToLive. Production tables are better declared in infrastructure as code (SAM, CloudFormation);
// CreateTable serves local runs and tests.
func CreateTable(ctx context.Context, client API, table string, optFns ...func(*Options)) error {
	o := resolve(optFns)
	want := []types.KeySchemaElement{{AttributeName: aws.String(o.IDAttr), KeyType: types.KeyTypeHash}}
	defs := []types.AttributeDefinition{{AttributeName: aws.String(o.IDAttr), AttributeType: types.ScalarAttributeTypeS}}
	if o.SortKeyAttr != "" {
		want = append(want, types.KeySchemaElement{AttributeName: aws.String(o.SortKeyAttr), KeyType: types.KeyTypeRange})
		defs = append(defs, types.AttributeDefinition{AttributeName: aws.String(o.SortKeyAttr), AttributeType: types.ScalarAttributeTypeS})
	}
	_, err := client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(table),
		KeySchema:            want,
		AttributeDefinitions: defs,
		BillingMode:          types.BillingModePayPerRequest,
	})
	var inUse *types.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return fmt.Errorf("dynamostore: create table %s: %w", table, err)
	}

	out, err := dynamodb.NewTableExistsWaiter(client, func(w *dynamodb.TableExistsWaiterOptions) {
		w.MinDelay = 500 * time.Millisecond
		w.MaxDelay = 5 * time.Second
	}).WaitForOutput(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)}, tableWait)
	if err != nil {
		return fmt.Errorf("dynamostore: wait for table %s: %w", table, err)
	}
	if got := out.Table.KeySchema; !sameKeySchema(got, want) {
		return fmt.Errorf("dynamostore: table %s exists with key schema %s, want %s", table, keySchemaString(got), keySchemaString(want))
	}
	return enableTTL(ctx, client, table, o.ExpirationAttr)
}

func enableTTL(ctx context.Context, client API, table, attr string) error {
	check := func() (done bool, err error) {
		d, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(table)})
		if err != nil {
			return false, fmt.Errorf("dynamostore: describe TTL of %s: %w", table, err)
		}
		ttl := d.TimeToLiveDescription
		if ttl == nil {
			return false, nil
		}
		switch ttl.TimeToLiveStatus {
		case types.TimeToLiveStatusEnabled, types.TimeToLiveStatusEnabling:
			if a := aws.ToString(ttl.AttributeName); a != attr {
				return false, fmt.Errorf("dynamostore: table %s has TTL on attribute %q, want %q", table, a, attr)
			}
			return true, nil
		}
		return false, nil
	}
	if done, err := check(); done || err != nil {
		return err
	}
	_, err := client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName:               aws.String(table),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String(attr), Enabled: aws.Bool(true)},
	})
	if err != nil {
		// A concurrent CreateTable may have enabled it in between.
		if done, cerr := check(); done && cerr == nil {
			return nil
		}
		return fmt.Errorf("dynamostore: enable TTL on %s.%s: %w", table, attr, err)
	}
	return nil
}

func sameKeySchema(a, b []types.KeySchemaElement) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		found := false
		for _, y := range b {
			if aws.ToString(x.AttributeName) == aws.ToString(y.AttributeName) && x.KeyType == y.KeyType {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func keySchemaString(ks []types.KeySchemaElement) string {
	s := "["
	for i, k := range ks {
		if i > 0 {
			s += " "
		}
		s += aws.ToString(k.AttributeName) + ":" + string(k.KeyType)
	}
	return s + "]"
}
