package runner_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/cmd/lambdalocal/internal/runner"
	"github.com/idemkit/idemkit/cmd/lambdalocal/internal/samtemplate"
	"github.com/idemkit/idemkit/internal/ddblocal/ddbtest"
	"github.com/idemkit/idemkit/internal/testwait"
)

func TestMain(m *testing.M) {
	code := ddbtest.Run(m)
	removeBuilds()
	os.Exit(code)
}

var fixture = filepath.Join("..", "..", "testdata", "template.yaml")

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

type echoed struct {
	Resource       string              `json:"resource"`
	Path           string              `json:"path"`
	Method         string              `json:"method"`
	PathParameters map[string]string   `json:"pathParameters"`
	Query          map[string][]string `json:"query"`
	Body           string              `json:"body"`
	RequestID      string              `json:"requestId"`
	LambdaID       string              `json:"lambdaId"`
	PID            int                 `json:"pid"`
	Env            map[string]string   `json:"env"`
}

func get(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, b
}

// TestServeEndToEnd builds the testdata echo function, serves it with two instances
// against DynamoDB Local and drives it over HTTP like a client of `make run`.
func TestServeEndToEnd(t *testing.T) {
	endpoint := ddbtest.Endpoint(t)
	t.Setenv(runner.EnvDynamoDBEndpoint, endpoint)
	log := &syncBuf{}
	ctx := context.Background()
	srv, err := runner.Serve(ctx, runner.ServeOptions{
		Options:            runner.Options{Template: fixture, Instances: 2, Log: log},
		Addr:               "127.0.0.1:0",
		IntegrationTimeout: 1500 * time.Millisecond,
	})
	require.NoError(t, err, log.String())
	t.Cleanup(srv.Close)
	client := ddbtest.Client(t)

	t.Run("tables and TTL", func(t *testing.T) {
		for _, name := range []string{"EchoTable", "EchoSimpleTable"} {
			_, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
			require.NoError(t, err, name)
		}
		ttl, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String("EchoTable")})
		require.NoError(t, err)
		assert.Equal(t, types.TimeToLiveStatusEnabled, ttl.TimeToLiveDescription.TimeToLiveStatus)
		assert.Equal(t, "expires", aws.ToString(ttl.TimeToLiveDescription.AttributeName))
	})

	t.Run("echo through API Gateway and the Runtime API", func(t *testing.T) {
		resp, body := get(t, srv.URL+"/echo/a/b?x=1&x=2")
		require.Equal(t, 200, resp.StatusCode, string(body))
		var e echoed
		require.NoError(t, json.Unmarshal(body, &e))
		assert.Equal(t, "/echo/{proxy+}", e.Resource)
		assert.Equal(t, "/echo/a/b", e.Path)
		assert.Equal(t, map[string]string{"proxy": "a/b"}, e.PathParameters)
		assert.Equal(t, map[string][]string{"x": {"1", "2"}}, e.Query)
		assert.Equal(t, e.RequestID, e.LambdaID, "API Gateway and Lambda share the request id locally")
		assert.Equal(t, resp.Header.Get("X-Amzn-Requestid"), e.RequestID)
		assert.Equal(t, map[string]string{
			"ECHO_TABLE":                      "EchoTable",
			"GREETING":                        "hello from us-east-1",
			"AWS_LAMBDA_FUNCTION_NAME":        "EchoFunction",
			"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
			"AWS_LAMBDA_LOG_FORMAT":           "JSON",
			"AWS_LAMBDA_LOG_LEVEL":            "WARN",
			"AWS_REGION":                      "us-east-1",
		}, e.Env)
		assert.Contains(t, log.String(), "GET /echo/a/b?x=1&x=2 -> EchoFunction (ANY /echo/{proxy+}) 200")
	})

	t.Run("the function writes to DynamoDB Local", func(t *testing.T) {
		key := ddbtest.UniqueName(t, "item")
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/items", strings.NewReader(`{"n":1}`))
		req.Header.Set("Idempotency-Key", key)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, 201, resp.StatusCode, string(b))
		assert.Equal(t, "/items/"+key, resp.Header.Get("Location"))
		assert.Equal(t, []string{"a", "b"}, resp.Header.Values("X-Multi"))
		assert.JSONEq(t, `{"stored":true}`, string(b))
		out, err := client.GetItem(ctx, &dynamodb.GetItemInput{
			TableName: aws.String("EchoTable"),
			Key:       map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: key}},
		})
		require.NoError(t, err)
		require.NotNil(t, out.Item)
		assert.Equal(t, `{"n":1}`, out.Item["body"].(*types.AttributeValueMemberS).Value)
	})

	t.Run("two instances serve at once", func(t *testing.T) {
		var wg sync.WaitGroup
		pids := make([]int, 2)
		for n := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// /echo/x sleeps nothing; to overlap, use the sleep route's sibling: hold one with /sleep.
				resp, body := get(t, srv.URL+"/sleep?ms=600")
				assert.Equal(t, 200, resp.StatusCode, string(body))
				var e echoed
				if assert.NoError(t, json.Unmarshal(body, &e)) {
					pids[n] = e.PID
				}
			}()
		}
		testwait.Group(t, &wg, "the two concurrent requests")
		assert.NotEqual(t, pids[0], pids[1], "each concurrent request got its own process")
	})

	t.Run("gateway errors", func(t *testing.T) {
		resp, body := get(t, srv.URL+"/nowhere")
		assert.Equal(t, 403, resp.StatusCode)
		assert.JSONEq(t, `{"message":"Missing Authentication Token"}`, string(body))

		resp, body = get(t, srv.URL+"/malformed")
		assert.Equal(t, 502, resp.StatusCode)
		assert.JSONEq(t, `{"message":"Internal server error"}`, string(body))
	})

	t.Run("crash is replaced", func(t *testing.T) {
		resp, body := get(t, srv.URL+"/crash")
		assert.Equal(t, 502, resp.StatusCode, string(body))
		for range 3 {
			resp, body = get(t, srv.URL+"/echo/after-crash")
			assert.Equal(t, 200, resp.StatusCode, string(body))
		}
	})

	t.Run("integration timeout is 504, the function keeps its own timeout", func(t *testing.T) {
		resp, body := get(t, srv.URL+"/sleep?ms=1800")
		assert.Equal(t, 504, resp.StatusCode)
		assert.JSONEq(t, `{"message":"Endpoint request timed out"}`, string(body))
	})

	t.Run("function timeout kills and replaces the instance", func(t *testing.T) {
		srv2, err := runner.Serve(ctx, runner.ServeOptions{
			Options: runner.Options{Template: fixture, Instances: 1, Log: log},
			Addr:    "127.0.0.1:0",
		})
		require.NoError(t, err)
		defer srv2.Close()
		resp, body := get(t, srv2.URL+"/echo/before")
		require.Equal(t, 200, resp.StatusCode)
		var before echoed
		require.NoError(t, json.Unmarshal(body, &before))

		// The handler would sleep 10 s, API Gateway would answer 504 at 29 s: a 502 can only come from the function's
		// 2 s timeout, whatever the machine's load (no wall-clock assertion needed).
		resp, body = get(t, srv2.URL+"/sleep?ms=10000")
		assert.Equal(t, 502, resp.StatusCode, "Lambda's 2 s timeout ends it before API Gateway's 29 s")
		assert.JSONEq(t, `{"message":"Internal server error"}`, string(body))

		resp, body = get(t, srv2.URL+"/echo/after")
		require.Equal(t, 200, resp.StatusCode, string(body))
		var after echoed
		require.NoError(t, json.Unmarshal(body, &after))
		assert.NotEqual(t, before.PID, after.PID, "a new process replaced the killed one")
		assert.Contains(t, log.String(), "Task timed out after 2.00 seconds")
	})
}

func TestInvokeStartsItsOwnDynamoDB(t *testing.T) {
	t.Setenv(runner.EnvDynamoDBEndpoint, "")
	log := &syncBuf{}
	ev, err := json.Marshal(map[string]any{"resource": "/echo", "path": "/echo", "httpMethod": "GET", "body": "hi"})
	require.NoError(t, err)
	var out bytes.Buffer
	failed, err := runner.Invoke(context.Background(), runner.Options{Template: fixture, DBPort: -1, Log: log}, "EchoFunction", ev, &out)
	require.NoError(t, err, log.String())
	assert.False(t, failed)
	var resp struct {
		StatusCode int    `json:"statusCode"`
		Body       string `json:"body"`
	}
	require.NoError(t, json.Unmarshal(out.Bytes(), &resp), out.String())
	assert.Equal(t, 200, resp.StatusCode)
	assert.Contains(t, resp.Body, `"body":"hi"`)
	assert.Contains(t, log.String(), "DynamoDB Local listening on http://127.0.0.1:")

	t.Run("function error", func(t *testing.T) {
		t.Setenv(runner.EnvDynamoDBEndpoint, ddbtest.Endpoint(t))
		out.Reset()
		failed, err := runner.Invoke(context.Background(), runner.Options{Template: fixture, Log: log}, "EchoFunction",
			[]byte(`{"resource":"/crash"}`), &out)
		require.NoError(t, err)
		assert.True(t, failed)
		assert.Contains(t, out.String(), "Runtime.ExitError")
	})
	t.Run("unknown function", func(t *testing.T) {
		t.Setenv(runner.EnvDynamoDBEndpoint, ddbtest.Endpoint(t))
		_, err := runner.Invoke(context.Background(), runner.Options{Template: fixture, Log: log}, "Nope", []byte(`{}`), &out)
		assert.ErrorContains(t, err, `function "Nope" is not in the template (functions: EchoFunction)`)
	})
}

func TestFunctionEnv(t *testing.T) {
	fn := &samtemplate.Function{
		Name: "F", Handler: "bootstrap", MemorySize: 512, LogFormat: "JSON", ApplicationLogLevel: "DEBUG",
		Environment: map[string]string{"TABLE": "T", "AWS_ENDPOINT_URL_DYNAMODB": "http://dynamodb-local:8000", "KEEP": "template"},
	}
	env := map[string]string{}
	for _, kv := range runner.FunctionEnv(fn, "/task", "http://127.0.0.1:8000", map[string]map[string]string{
		"Parameters": {"KEEP": "params", "ALL": "1", "AWS_ENDPOINT_URL_DYNAMODB": "http://dynamodb-local:8000"},
		"F":          {"KEEP": "function"},
	}) {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	assert.Equal(t, "http://127.0.0.1:8000", env["AWS_ENDPOINT_URL_DYNAMODB"], "the runner's DynamoDB wins over the template and env.json")
	assert.Equal(t, "function", env["KEEP"], "env.json: function scope over Parameters over template")
	assert.Equal(t, "1", env["ALL"])
	assert.Equal(t, "T", env["TABLE"])
	assert.Equal(t, "512", env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"])
	assert.Equal(t, "$LATEST", env["AWS_LAMBDA_FUNCTION_VERSION"])
	assert.Equal(t, "JSON", env["AWS_LAMBDA_LOG_FORMAT"])
	assert.Equal(t, "DEBUG", env["AWS_LAMBDA_LOG_LEVEL"])
	assert.Equal(t, "us-east-1", env["AWS_REGION"])
	assert.NotEmpty(t, env["AWS_ACCESS_KEY_ID"])
	assert.NotEmpty(t, env["AWS_SECRET_ACCESS_KEY"])
	assert.Equal(t, "/task", env["LAMBDA_TASK_ROOT"])
}

func TestServeRefusesNonLoopback(t *testing.T) {
	_, err := runner.Serve(context.Background(), runner.ServeOptions{Options: runner.Options{Template: fixture}, Addr: "0.0.0.0:0"})
	assert.ErrorContains(t, err, "loopback")
}

func TestTables(t *testing.T) {
	endpoint := ddbtest.Endpoint(t)
	var log bytes.Buffer
	// Twice: existing tables are fine.
	for range 2 {
		require.NoError(t, runner.Tables(context.Background(), fixture, endpoint, &log))
	}
	assert.Contains(t, log.String(), "table EchoTable ready on "+endpoint)
	ttl, err := ddbtest.Client(t).DescribeTimeToLive(context.Background(), &dynamodb.DescribeTimeToLiveInput{TableName: aws.String("EchoTable")})
	require.NoError(t, err)
	assert.Equal(t, types.TimeToLiveStatusEnabled, ttl.TimeToLiveDescription.TimeToLiveStatus)

	assert.ErrorContains(t, runner.Tables(context.Background(), fixture, "http://127.0.0.1:1", &log), "does not answer")
}
