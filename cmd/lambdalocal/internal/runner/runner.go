// Package runner wires the local stack together for the lambdalocal commands:
// DynamoDB Local and the template's tables, a Go build of each function's
// bootstrap, a runtimeapi.Pool per function and the API Gateway emulation.
package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/idemkit/idemkit/cmd/lambdalocal/internal/runtimeapi"
	"github.com/idemkit/idemkit/cmd/lambdalocal/internal/samtemplate"
	"github.com/idemkit/idemkit/internal/ddblocal"
)

// EnvDynamoDBEndpoint is the SDK's standard variable for a DynamoDB endpoint. When it
// is set in the runner's environment, that DynamoDB is used and none is started.
const EnvDynamoDBEndpoint = "AWS_ENDPOINT_URL_DYNAMODB"

// DefaultDBPort is where `make run` and `make db` put DynamoDB Local unless told otherwise (the Makefile's DDB_PORT).
const DefaultDBPort = 8000

// Options configure a Stack.
type Options struct {
	// Template is the SAM template's path. Empty means template.yaml.
	Template string
	// Functions limits the stack to these logical IDs; empty means every function.
	Functions []string
	// Instances per function. Zero means 2.
	Instances int
	// DBPort is DynamoDB Local's port when one is started. Zero means DefaultDBPort;
	// -1 picks a free port (tests).
	DBPort int
	// EnvVars is a SAM-style env.json: {"FunctionName": {"VAR": "v"}, "Parameters": {"VAR": "v"}}.
	// Its values win over the template's, as with `sam local --env-vars`, except
	// AWS_ENDPOINT_URL_DYNAMODB, which is always the runner's DynamoDB.
	EnvVars string
	// Log receives the runner's own messages and the functions' output. Nil means os.Stderr.
	Log io.Writer
}

// Stack is a running local environment.
type Stack struct {
	Template *samtemplate.Template
	// Endpoint is the DynamoDB endpoint the functions use.
	Endpoint string
	// Pools by function name.
	Pools map[string]*runtimeapi.Pool

	db       *ddblocal.Instance
	buildDir string
	log      io.Writer
}

// Start builds the stack: DynamoDB and tables, function builds, instance pools.
// On error everything already started is stopped.
func Start(ctx context.Context, opts Options) (_ *Stack, err error) {
	if opts.Template == "" {
		opts.Template = "template.yaml"
	}
	if opts.Instances <= 0 {
		opts.Instances = 2
	}
	s := &Stack{Pools: map[string]*runtimeapi.Pool{}, log: opts.Log}
	if s.log == nil {
		s.log = os.Stderr
	}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.Template, err = samtemplate.Open(opts.Template); err != nil {
		return nil, err
	}
	for _, w := range s.Template.Warnings {
		s.logf("warning: %s", w)
	}
	fns, err := s.selectFunctions(opts.Functions)
	if err != nil {
		return nil, err
	}
	overrides, err := readEnvVars(opts.EnvVars)
	if err != nil {
		return nil, err
	}
	if err = s.startDB(ctx, opts.DBPort); err != nil {
		return nil, err
	}
	client, err := ddblocal.NewClient(ctx, s.Endpoint)
	if err != nil {
		return nil, err
	}
	if err = CreateTables(ctx, client, s.Template.SortedTables()); err != nil {
		return nil, err
	}
	for _, tb := range s.Template.SortedTables() {
		ttl := ""
		if tb.TTLAttribute != "" {
			ttl = " (TTL on " + tb.TTLAttribute + ")"
		}
		s.logf("table %s ready%s", tb.Name, ttl)
	}
	if s.buildDir, err = os.MkdirTemp("", "lambdalocal-"); err != nil {
		return nil, err
	}
	// Every function is built before any instance starts, so that the ready times the pools log ("[Fn#n] ready
	// in ...") measure the bootstraps' cold starts, not a go build competing with them for the CPU.
	for _, fn := range fns {
		s.logf("building %s from %s", fn.Name, fn.CodeURI)
		if err = Build(ctx, s.Template.Dir, fn.CodeURI, filepath.Join(s.buildDir, fn.Name, "bootstrap")); err != nil {
			return nil, fmt.Errorf("build %s: %w", fn.Name, err)
		}
	}
	for _, fn := range fns {
		bootstrap := filepath.Join(s.buildDir, fn.Name, "bootstrap")
		pool, err := runtimeapi.Start(runtimeapi.Config{
			Function:  fn.Name,
			Command:   bootstrap,
			Dir:       filepath.Dir(bootstrap),
			Env:       FunctionEnv(fn, filepath.Dir(bootstrap), s.Endpoint, overrides),
			Timeout:   fn.Timeout,
			Instances: opts.Instances,
			Output:    s.log,
		})
		if err != nil {
			return nil, err
		}
		s.Pools[fn.Name] = pool
	}
	return s, nil
}

func (s *Stack) selectFunctions(names []string) ([]*samtemplate.Function, error) {
	if len(names) == 0 {
		return s.Template.SortedFunctions(), nil
	}
	var out []*samtemplate.Function
	for _, n := range names {
		fn, ok := s.Template.Functions[n]
		if !ok {
			known := make([]string, 0, len(s.Template.Functions))
			for k := range s.Template.Functions {
				known = append(known, k)
			}
			sort.Strings(known)
			return nil, fmt.Errorf("function %q is not in the template (functions: %s)", n, strings.Join(known, ", "))
		}
		out = append(out, fn)
	}
	return out, nil
}

// startDB uses $AWS_ENDPOINT_URL_DYNAMODB, else a DynamoDB already answering on the
// port (a `make db` in another terminal), else starts DynamoDB Local there.
func (s *Stack) startDB(ctx context.Context, port int) error {
	if ep := os.Getenv(EnvDynamoDBEndpoint); ep != "" {
		if !answers(ctx, ep) {
			return fmt.Errorf("DynamoDB at %s (from %s) does not answer: start it (make db) or unset the variable", ep, EnvDynamoDBEndpoint)
		}
		s.Endpoint = ep
		s.logf("using DynamoDB at %s (%s)", ep, EnvDynamoDBEndpoint)
		return nil
	}
	switch port {
	case 0:
		port = DefaultDBPort
	case -1:
		port = 0
	}
	if port != 0 {
		ep := "http://127.0.0.1:" + strconv.Itoa(port)
		if answers(ctx, ep) {
			s.Endpoint = ep
			s.logf("using the DynamoDB already running at %s", ep)
			return nil
		}
	}
	dir, err := ddblocal.FindDir(s.Template.Dir)
	if err != nil {
		if dir, err = ddblocal.FindDir(""); err != nil {
			return err
		}
	}
	s.logf("starting DynamoDB Local (in memory)...")
	db, err := ddblocal.Start(ctx, ddblocal.Options{Port: port, Dir: dir})
	if err != nil {
		return err
	}
	s.db = db
	s.Endpoint = db.Endpoint()
	s.logf("DynamoDB Local listening on %s", s.Endpoint)
	return nil
}

func answers(ctx context.Context, endpoint string) bool {
	client, err := ddblocal.NewClient(ctx, endpoint)
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = client.ListTables(ctx, &dynamodb.ListTablesInput{}, func(o *dynamodb.Options) { o.RetryMaxAttempts = 1 })
	return err == nil
}

// Close stops the pools, DynamoDB Local (if this stack started it) and removes the builds.
func (s *Stack) Close() {
	for _, p := range s.Pools {
		p.Close()
	}
	if s.db != nil {
		if err := s.db.Stop(); err != nil {
			s.logf("stop DynamoDB Local: %v", err)
		}
	}
	if s.buildDir != "" {
		_ = os.RemoveAll(s.buildDir)
	}
}

func (s *Stack) logf(format string, args ...any) {
	fmt.Fprintf(s.log, "lambdalocal: "+format+"\n", args...)
}

// CreateTables creates each table and enables its TTL. A table that already exists
// (a reused DynamoDB) is left as it is, TTL included when already enabled.
func CreateTables(ctx context.Context, client *dynamodb.Client, tables []*samtemplate.Table) error {
	for _, tb := range tables {
		_, err := client.CreateTable(ctx, tb.Create)
		var inUse *types.ResourceInUseException
		if err != nil && !errors.As(err, &inUse) {
			return fmt.Errorf("create table %s: %w", tb.Name, err)
		}
		waiter := dynamodb.NewTableExistsWaiter(client, func(o *dynamodb.TableExistsWaiterOptions) {
			o.MinDelay = 50 * time.Millisecond
			o.MaxDelay = time.Second
		})
		if err := waiter.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(tb.Name)}, 30*time.Second); err != nil {
			return fmt.Errorf("wait for table %s: %w", tb.Name, err)
		}
		if tb.TTLAttribute == "" {
			continue
		}
		desc, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(tb.Name)})
		if err == nil && desc.TimeToLiveDescription != nil &&
			desc.TimeToLiveDescription.TimeToLiveStatus == types.TimeToLiveStatusEnabled &&
			aws.ToString(desc.TimeToLiveDescription.AttributeName) == tb.TTLAttribute {
			continue
		}
		_, err = client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
			TableName: aws.String(tb.Name),
			TimeToLiveSpecification: &types.TimeToLiveSpecification{
				AttributeName: aws.String(tb.TTLAttribute),
				Enabled:       aws.Bool(true),
			},
		})
		if err != nil {
			return fmt.Errorf("enable TTL on %s: %w", tb.Name, err)
		}
	}
	return nil
}

// Build compiles the Go main package at codeURI (relative to dir) into out, for the
// host, statically (CGO_ENABLED=0) and with lambda.norpc as AWS recommends for provided.* runtimes.
func Build(ctx context.Context, dir, codeURI, out string) error {
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	pkg := codeURI
	if !filepath.IsAbs(pkg) {
		pkg = "./" + filepath.ToSlash(filepath.Clean(pkg))
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "lambda.norpc", "-o", out, pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, strings.TrimSpace(string(b)))
	}
	return nil
}

// FunctionEnv is the environment of a function's process: what Lambda sets, then the
// template's variables, then env.json overrides, then the runner's DynamoDB endpoint.
func FunctionEnv(fn *samtemplate.Function, taskRoot, dynamoEndpoint string, overrides map[string]map[string]string) []string {
	path := os.Getenv("PATH")
	if path == "" {
		path = "/usr/local/bin:/usr/bin:/bin"
	}
	env := map[string]string{
		"PATH":                            path,
		"LANG":                            "en_US.UTF-8",
		"TZ":                              ":UTC",
		"LAMBDA_TASK_ROOT":                taskRoot,
		"LAMBDA_RUNTIME_DIR":              taskRoot,
		"_HANDLER":                        fn.Handler,
		"AWS_LAMBDA_FUNCTION_NAME":        fn.Name,
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": strconv.Itoa(fn.MemorySize),
		"AWS_LAMBDA_FUNCTION_VERSION":     "$LATEST",
		"AWS_LAMBDA_LOG_GROUP_NAME":       "/aws/lambda/" + fn.Name,
		"AWS_LAMBDA_INITIALIZATION_TYPE":  "on-demand",
		"AWS_REGION":                      ddblocal.Region,
		"AWS_DEFAULT_REGION":              ddblocal.Region,
		"AWS_ACCESS_KEY_ID":               ddblocal.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY":           ddblocal.SecretAccessKey,
	}
	if fn.LogFormat != "" {
		env["AWS_LAMBDA_LOG_FORMAT"] = fn.LogFormat
	}
	if fn.ApplicationLogLevel != "" {
		env["AWS_LAMBDA_LOG_LEVEL"] = fn.ApplicationLogLevel
	}
	for k, v := range fn.Environment {
		env[k] = v
	}
	for _, scope := range []string{"Parameters", fn.Name} {
		for k, v := range overrides[scope] {
			env[k] = v
		}
	}
	// Locally the functions always talk to the runner's DynamoDB, set last: a deployed
	// template leaves this empty, and an env.json made for `sam local` points it at a
	// container name (http://dynamodb-local:8000) that only resolves inside Docker.
	// To use another DynamoDB, set AWS_ENDPOINT_URL_DYNAMODB for the runner itself.
	env[EnvDynamoDBEndpoint] = dynamoEndpoint
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

func readEnvVars(path string) (map[string]map[string]string, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("env vars: %w", err)
	}
	var raw map[string]map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("env vars %s: want {\"FunctionName\": {\"VAR\": \"value\"}}: %w", path, err)
	}
	out := map[string]map[string]string{}
	for scope, vars := range raw {
		out[scope] = map[string]string{}
		for k, v := range vars {
			out[scope][k] = fmt.Sprint(v)
		}
	}
	return out, nil
}
