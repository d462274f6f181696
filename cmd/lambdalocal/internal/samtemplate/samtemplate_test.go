package samtemplate_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/cmd/lambdalocal/internal/samtemplate"
)

func TestOpen(t *testing.T) {
	tpl, err := samtemplate.Open(filepath.Join("testdata", "template.yaml"))
	require.NoError(t, err)

	abs, _ := filepath.Abs("testdata")
	assert.Equal(t, abs, tpl.Dir)
	assert.ElementsMatch(t, []string{"image/png", "application/octet-stream"}, tpl.BinaryMediaTypes)

	require.Len(t, tpl.Functions, 2, "the Python function is skipped with a warning")
	assert.Len(t, tpl.Warnings, 2)
	assert.Contains(t, tpl.Warnings[0]+tpl.Warnings[1], "python3.12")
	assert.Contains(t, tpl.Warnings[0]+tpl.Warnings[1], "SQS")

	pay := tpl.Functions["PaymentFunction"]
	require.NotNil(t, pay)
	assert.Equal(t, "handlers/payment/", pay.CodeURI)
	assert.Equal(t, "provided.al2023", pay.Runtime, "from Globals")
	assert.Equal(t, "bootstrap", pay.Handler)
	assert.Equal(t, 5*time.Second, pay.Timeout, "the function overrides Globals")
	assert.Equal(t, 256, pay.MemorySize)
	assert.Equal(t, "JSON", pay.LogFormat)
	assert.Equal(t, "DEBUG", pay.ApplicationLogLevel)
	assert.Equal(t, map[string]string{
		"IDEMPOTENCY_TABLE":         "IdempotencyTable",
		"STAGE":                     "dev",
		"REGION":                    "us-east-1",
		"AWS_ENDPOINT_URL_DYNAMODB": "",
		"PAYMENTS_TABLE":            "PaymentsTable",
		"PAYMENTS_ARN":              "arn:aws:dynamodb:us-east-1:123456789012:table/PaymentsTable",
		"GREETING":                  "hello-dev-us-east-1-PaymentsTable-${Literal}",
		"RETRIES":                   "3",
		"DEBUG":                     "true",
	}, pay.Environment)
	assert.Equal(t, []samtemplate.Route{
		{Function: "PaymentFunction", Event: "Create", Path: "/payments", Method: "POST"},
		{Function: "PaymentFunction", Event: "Get", Path: "/payments/{id}", Method: "GET"},
	}, pay.Routes)

	user := tpl.Functions["UserFunction"]
	require.NotNil(t, user)
	assert.Equal(t, 10*time.Second, user.Timeout, "from Globals")
	assert.Equal(t, "INFO", user.ApplicationLogLevel)
	assert.Equal(t, []samtemplate.Route{{Function: "UserFunction", Event: "Any", Path: "/users/{proxy+}", Method: "ANY"}}, user.Routes)
	assert.Len(t, tpl.Routes(), 3)
}

func TestTables(t *testing.T) {
	tpl, err := samtemplate.Open(filepath.Join("testdata", "template.yaml"))
	require.NoError(t, err)
	require.Len(t, tpl.Tables, 3)
	names := []string{}
	for _, tb := range tpl.SortedTables() {
		names = append(names, tb.Name)
	}
	assert.Equal(t, []string{"IdempotencyTable", "PaymentsTable", "UsersTable"}, names)

	idem := tpl.Tables["IdempotencyTable"]
	assert.Equal(t, "IdempotencyTable", aws.ToString(idem.Create.TableName), "local name = logical ID")
	assert.Equal(t, types.BillingModePayPerRequest, idem.Create.BillingMode)
	assert.Equal(t, "expiration", idem.TTLAttribute)
	assert.Equal(t, []types.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: types.KeyTypeHash}}, idem.Create.KeySchema)

	pay := tpl.Tables["PaymentsTable"]
	assert.Equal(t, "PaymentsTable", aws.ToString(pay.Create.TableName), "TableName in the template is not used locally")
	assert.Empty(t, pay.TTLAttribute, "TTL disabled")
	assert.Equal(t, types.BillingModeProvisioned, pay.Create.BillingMode)
	assert.Equal(t, int64(2), aws.ToInt64(pay.Create.ProvisionedThroughput.ReadCapacityUnits))
	assert.Equal(t, int64(3), aws.ToInt64(pay.Create.ProvisionedThroughput.WriteCapacityUnits))
	require.Len(t, pay.Create.GlobalSecondaryIndexes, 1)
	gsi := pay.Create.GlobalSecondaryIndexes[0]
	assert.Equal(t, "byEmail", aws.ToString(gsi.IndexName))
	assert.Equal(t, types.ProjectionTypeKeysOnly, gsi.Projection.ProjectionType)
	assert.NotNil(t, gsi.ProvisionedThroughput, "a provisioned table needs throughput on its GSIs")
	assert.Len(t, pay.Create.AttributeDefinitions, 3)

	users := tpl.Tables["UsersTable"]
	assert.Equal(t, []types.AttributeDefinition{{AttributeName: aws.String("userId"), AttributeType: types.ScalarAttributeTypeS}}, users.Create.AttributeDefinitions)
	assert.Equal(t, types.BillingModePayPerRequest, users.Create.BillingMode)
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"not yaml", "Resources: [", "parse template"},
		{"function without CodeUri", `
Resources:
  F:
    Type: AWS::Serverless::Function
    Properties: {Runtime: provided.al2023}`, "CodeUri"},
		{"api event without method", `
Resources:
  F:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: provided.al2023
      CodeUri: f/
      Events:
        E: {Type: Api, Properties: {Path: /x}}`, "Method is required"},
		{"table without key schema", `
Resources:
  T:
    Type: AWS::DynamoDB::Table
    Properties: {BillingMode: PAY_PER_REQUEST}`, "KeySchema"},
		{"timeout not a number", `
Resources:
  F:
    Type: AWS::Serverless::Function
    Properties: {Runtime: provided.al2023, CodeUri: f/, Timeout: soon}`, "integer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := samtemplate.Parse([]byte(tt.yaml), false)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestParseJSON(t *testing.T) {
	tpl, err := samtemplate.Parse([]byte(`{"Resources":{"F":{"Type":"AWS::Serverless::Function","Properties":{
		"Runtime":"provided.al2","CodeUri":"f","Environment":{"Variables":{"T":{"Ref":"T"}}},
		"Events":{"E":{"Type":"Api","Properties":{"Path":"/{proxy+}","Method":"ANY"}}}}},
		"T":{"Type":"AWS::Serverless::SimpleTable"}}}`), true)
	require.NoError(t, err)
	assert.Equal(t, "T", tpl.Functions["F"].Environment["T"])
	assert.Equal(t, samtemplate.DefaultTimeout, tpl.Functions["F"].Timeout)
	assert.Equal(t, samtemplate.DefaultMemorySize, tpl.Functions["F"].MemorySize)
	assert.Equal(t, "id", aws.ToString(tpl.Tables["T"].Create.KeySchema[0].AttributeName), "SimpleTable default key")
}

func TestParseHTTPAPIEvents(t *testing.T) {
	tpl, err := samtemplate.Open("testdata/httpapi.yaml")
	require.NoError(t, err)
	assert.Empty(t, tpl.Warnings)
	assert.Equal(t, []samtemplate.Route{
		{Function: "OrdersFunction", Event: "Create", Path: "/orders", Method: "POST", HTTPAPI: true, PayloadFormat: "2.0"},
		{Function: "OrdersFunction", Event: "Get", Path: "/orders/{id}", Method: "GET", HTTPAPI: true, PayloadFormat: "2.0"},
		{Function: "OrdersFunction", Event: "Legacy", Path: "/legacy/{proxy+}", Method: "ANY", HTTPAPI: true, PayloadFormat: "1.0"},
	}, tpl.Functions["OrdersFunction"].Routes)
	assert.Equal(t, []samtemplate.Route{
		{Function: "FallbackFunction", Event: "CatchAll", Path: samtemplate.DefaultRoute, Method: "ANY", HTTPAPI: true, PayloadFormat: "2.0"},
	}, tpl.Functions["FallbackFunction"].Routes)
}

func TestParseHTTPAPIEventErrors(t *testing.T) {
	for _, tc := range []struct{ name, props, want string }{
		{"PathWithoutMethod", "{Path: /orders}", "needs both Path and Method"},
		{"MethodWithoutPath", "{Method: get}", "needs both Path and Method"},
		{"RelativePath", "{Path: orders, Method: get}", `path "orders" must start with /`},
		{"UnknownPayloadVersion", "{Path: /orders, Method: get, PayloadFormatVersion: '3.0'}", `PayloadFormatVersion "3.0"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := "Resources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: fn/\n      Runtime: provided.al2023\n" +
				"      Events:\n        E:\n          Type: HttpApi\n          Properties: " + tc.props + "\n"
			_, err := samtemplate.Parse([]byte(src), false)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.Contains(t, err.Error(), "event E")
		})
	}
}

// An unquoted YAML 1.0 or 2.0 is a number; SAM reads it as the version all the same.
func TestParseHTTPAPIPayloadVersionAsNumber(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{{"1.0", "1.0"}, {"2.0", "2.0"}, {"'1.0'", "1.0"}} {
		src := "Resources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: fn/\n      Runtime: provided.al2023\n" +
			"      Events:\n        E:\n          Type: HttpApi\n          Properties: {Path: /x, Method: get, PayloadFormatVersion: " + tc.yaml + "}\n"
		tpl, err := samtemplate.Parse([]byte(src), false)
		require.NoError(t, err, tc.yaml)
		assert.Equal(t, tc.want, tpl.Functions["Fn"].Routes[0].PayloadFormat, tc.yaml)
	}
}
