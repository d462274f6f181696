package dynamostore

// CreateTable's decisions on a fake client: DynamoDB Local cannot be made to hold a table with another key schema
// under our name, TTL on another attribute, or fail UpdateTimeToLive once, on demand.

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type tableFake struct {
	API         // the item calls: none expected
	createErr   error
	created     *dynamodb.CreateTableInput
	schema      []types.KeySchemaElement       // what DescribeTable reports (ACTIVE)
	ttl         []*types.TimeToLiveDescription // successive DescribeTimeToLive answers (the last repeats)
	ttlCalls    int
	updateErr   error
	updatedAttr string
	describeErr error // DescribeTable's error
	ttlErr      error // DescribeTimeToLive's error
}

func (f *tableFake) CreateTable(_ context.Context, in *dynamodb.CreateTableInput, _ ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error) {
	f.created = in
	return &dynamodb.CreateTableOutput{}, f.createErr
}

func (f *tableFake) DescribeTable(_ context.Context, in *dynamodb.DescribeTableInput, _ ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error) {
	if f.describeErr != nil {
		return nil, f.describeErr
	}
	return &dynamodb.DescribeTableOutput{Table: &types.TableDescription{TableName: in.TableName, TableStatus: types.TableStatusActive, KeySchema: f.schema}}, nil
}

func (f *tableFake) DescribeTimeToLive(context.Context, *dynamodb.DescribeTimeToLiveInput, ...func(*dynamodb.Options)) (*dynamodb.DescribeTimeToLiveOutput, error) {
	if f.ttlErr != nil {
		return nil, f.ttlErr
	}
	d := f.ttl[min(f.ttlCalls, len(f.ttl)-1)]
	f.ttlCalls++
	return &dynamodb.DescribeTimeToLiveOutput{TimeToLiveDescription: d}, nil
}

func (f *tableFake) UpdateTimeToLive(_ context.Context, in *dynamodb.UpdateTimeToLiveInput, _ ...func(*dynamodb.Options)) (*dynamodb.UpdateTimeToLiveOutput, error) {
	f.updatedAttr = aws.ToString(in.TimeToLiveSpecification.AttributeName)
	return &dynamodb.UpdateTimeToLiveOutput{}, f.updateErr
}

func keys(pairs ...string) []types.KeySchemaElement {
	var ks []types.KeySchemaElement
	for i := 0; i < len(pairs); i += 2 {
		ks = append(ks, types.KeySchemaElement{AttributeName: aws.String(pairs[i]), KeyType: types.KeyType(pairs[i+1])})
	}
	return ks
}

func ttlOn(attr string, status types.TimeToLiveStatus) *types.TimeToLiveDescription {
	return &types.TimeToLiveDescription{AttributeName: aws.String(attr), TimeToLiveStatus: status}
}

func TestCreateTableDecisions(t *testing.T) {
	ctx := context.Background()
	enabled := ttlOn("expiration", types.TimeToLiveStatusEnabled)
	tests := []struct {
		name       string
		fake       tableFake
		opts       []func(*Options)
		err        string // empty: success
		updatedTTL string // the attribute UpdateTimeToLive was asked to enable, "" when not called
	}{
		{name: "new table: TTL enabled", fake: tableFake{schema: keys("id", "HASH"), ttl: []*types.TimeToLiveDescription{nil}}, updatedTTL: "expiration"},
		{name: "existing table, TTL already on", fake: tableFake{createErr: &types.ResourceInUseException{}, schema: keys("id", "HASH"), ttl: []*types.TimeToLiveDescription{enabled}}},
		{name: "TTL being enabled counts as on", fake: tableFake{schema: keys("id", "HASH"), ttl: []*types.TimeToLiveDescription{ttlOn("expiration", types.TimeToLiveStatusEnabling)}}},
		{name: "TTL disabled: enabled", fake: tableFake{schema: keys("id", "HASH"), ttl: []*types.TimeToLiveDescription{ttlOn("expiration", types.TimeToLiveStatusDisabled)}}, updatedTTL: "expiration"},
		{name: "TTL on another attribute", fake: tableFake{schema: keys("id", "HASH"), ttl: []*types.TimeToLiveDescription{ttlOn("ttl", types.TimeToLiveStatusEnabled)}},
			err: `has TTL on attribute "ttl", want "expiration"`},
		{name: "create fails otherwise", fake: tableFake{createErr: errors.New("access denied"), schema: keys("id", "HASH")}, err: "create table tbl: access denied"},
		{name: "another key schema", fake: tableFake{createErr: &types.ResourceInUseException{}, schema: keys("pk", "HASH")},
			err: "exists with key schema [pk:HASH], want [id:HASH]"},
		{name: "a sort key missing", fake: tableFake{createErr: &types.ResourceInUseException{}, schema: keys("id", "HASH")},
			opts: []func(*Options){func(o *Options) { o.SortKeyAttr = "sk" }}, err: "exists with key schema [id:HASH], want [id:HASH sk:RANGE]"},
		{name: "same names, other key types", fake: tableFake{createErr: &types.ResourceInUseException{}, schema: keys("id", "RANGE", "sk", "HASH")},
			opts: []func(*Options){func(o *Options) { o.SortKeyAttr = "sk" }}, err: "exists with key schema [id:RANGE sk:HASH]"},
		{name: "sort-key layout, listed the other way round", fake: tableFake{schema: keys("sk", "RANGE", "id", "HASH"), ttl: []*types.TimeToLiveDescription{enabled}},
			opts: []func(*Options){func(o *Options) { o.SortKeyAttr = "sk" }}},
		{name: "update fails but a concurrent caller enabled it", fake: tableFake{schema: keys("id", "HASH"), updateErr: errors.New("in progress"),
			ttl: []*types.TimeToLiveDescription{nil, enabled}}, updatedTTL: "expiration"},
		{name: "describe table fails", fake: tableFake{describeErr: errors.New("describe denied")}, err: "wait for table tbl:"},
		{name: "describe TTL fails", fake: tableFake{schema: keys("id", "HASH"), ttlErr: errors.New("ttl denied")}, err: "describe TTL of tbl: ttl denied"},
		{name: "update fails", fake: tableFake{schema: keys("id", "HASH"), updateErr: errors.New("denied"), ttl: []*types.TimeToLiveDescription{nil}},
			updatedTTL: "expiration", err: "enable TTL on tbl.expiration: denied"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.fake
			err := CreateTable(ctx, &f, "tbl", tc.opts...)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
			} else {
				require.NoError(t, err)
			}
			assert.Equal(t, tc.updatedTTL, f.updatedAttr)
			require.NotNil(t, f.created)
			assert.Equal(t, types.BillingModePayPerRequest, f.created.BillingMode)
			if len(tc.opts) > 0 {
				assert.Equal(t, keys("id", "HASH", "sk", "RANGE"), f.created.KeySchema)
				assert.Len(t, f.created.AttributeDefinitions, 2)
			} else {
				assert.Equal(t, keys("id", "HASH"), f.created.KeySchema)
				assert.Len(t, f.created.AttributeDefinitions, 1)
			}
		})
	}
}
