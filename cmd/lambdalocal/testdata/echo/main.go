// Command echo is the lambdalocal tests' function: a real lambda.Start bootstrap
// that echoes its API Gateway event, writes to DynamoDB through the SDK's standard
// configuration (AWS_ENDPOINT_URL_DYNAMODB included), and misbehaves on request.
package main

import (
	"context"
	"encoding/json"
	"os"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

var db *dynamodb.Client

func main() {
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		panic(err)
	}
	db = dynamodb.NewFromConfig(cfg)
	lambda.Start(handle)
}

func handle(ctx context.Context, ev events.APIGatewayProxyRequest) (any, error) {
	switch ev.Resource {
	case "/sleep":
		ms, _ := strconv.Atoi(ev.QueryStringParameters["ms"])
		time.Sleep(time.Duration(ms) * time.Millisecond)
	case "/crash":
		os.Exit(4)
	case "/malformed":
		return map[string]string{"Hello": "World"}, nil
	case "/items":
		_, err := db.PutItem(ctx, &dynamodb.PutItemInput{
			TableName: aws.String(os.Getenv("ECHO_TABLE")),
			Item: map[string]types.AttributeValue{
				"id":   &types.AttributeValueMemberS{Value: ev.Headers["Idempotency-Key"]},
				"body": &types.AttributeValueMemberS{Value: ev.Body},
			},
		})
		if err != nil {
			return nil, err
		}
		return events.APIGatewayProxyResponse{
			StatusCode:        201,
			Headers:           map[string]string{"Content-Type": "application/json", "Location": "/items/" + ev.Headers["Idempotency-Key"]},
			MultiValueHeaders: map[string][]string{"X-Multi": {"a", "b"}},
			Body:              `{"stored":true}`,
		}, nil
	}
	lc, _ := lambdacontext.FromContext(ctx)
	body, _ := json.Marshal(map[string]any{
		"resource":       ev.Resource,
		"path":           ev.Path,
		"method":         ev.HTTPMethod,
		"pathParameters": ev.PathParameters,
		"query":          ev.MultiValueQueryStringParameters,
		"body":           ev.Body,
		"requestId":      ev.RequestContext.RequestID,
		"lambdaId":       lc.AwsRequestID,
		"pid":            os.Getpid(),
		"env": map[string]string{
			"ECHO_TABLE":                      os.Getenv("ECHO_TABLE"),
			"GREETING":                        os.Getenv("GREETING"),
			"AWS_LAMBDA_FUNCTION_NAME":        os.Getenv("AWS_LAMBDA_FUNCTION_NAME"),
			"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": os.Getenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"),
			"AWS_LAMBDA_LOG_FORMAT":           os.Getenv("AWS_LAMBDA_LOG_FORMAT"),
			"AWS_LAMBDA_LOG_LEVEL":            os.Getenv("AWS_LAMBDA_LOG_LEVEL"),
			"AWS_REGION":                      os.Getenv("AWS_REGION"),
		},
	})
	return events.APIGatewayProxyResponse{StatusCode: 200, Headers: map[string]string{"Content-Type": "application/json"}, Body: string(body)}, nil
}
