// Command lambdalocal runs the SAM template's Go functions locally without Docker:
// API Gateway (REST and HTTP APIs, proxy integration) in front, each function's own bootstrap
// behind the Lambda Runtime API, DynamoDB Local for the tables.
//
//	lambdalocal serve  [-template template.yaml] [-addr 127.0.0.1:3000] [-instances 2] [-env-vars env.json] [-db-port 8000]
//	lambdalocal invoke -function PaymentFunction -event events/payment-create.json [-template template.yaml] [-env-vars env.json]
//	lambdalocal db     [-port 8000]
//	lambdalocal tables [-template template.yaml] [-endpoint http://127.0.0.1:8000]
//	lambdalocal validate [-template template.yaml]
//
// PORT overrides the port of -addr. AWS_ENDPOINT_URL_DYNAMODB, when set, is used
// instead of starting DynamoDB Local.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/idemkit/idemkit/cmd/lambdalocal/internal/runner"
	"github.com/idemkit/idemkit/cmd/lambdalocal/internal/samtemplate"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

const usage = `usage: lambdalocal <command> [flags]

commands:
  serve   serve the template's API routes on http://127.0.0.1:3000 (PORT to change)
  invoke  run one function once on an event and print its response
  db      run DynamoDB Local alone on 127.0.0.1:8000
  tables  create the template's tables (with TTL) on a running DynamoDB
  validate check the template against goformation's CloudFormation + SAM schema

Run "lambdalocal <command> -h" for the flags of a command.
`

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(ctx, args[1:], stderr)
	case "invoke":
		var failed bool
		failed, err = invoke(ctx, args[1:], stdin, stdout, stderr)
		if err == nil && failed {
			return 1
		}
	case "db":
		err = db(ctx, args[1:], stderr)
	case "tables":
		err = tables(ctx, args[1:], stderr)
	case "validate":
		err = validate(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "lambdalocal: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "lambdalocal:", err)
		return 1
	}
	return 0
}

func commonFlags(fs *flag.FlagSet, o *runner.Options) {
	fs.StringVar(&o.Template, "template", "template.yaml", "SAM template")
	fs.StringVar(&o.EnvVars, "env-vars", "", `JSON file of environment overrides, as for sam local: {"FunctionName": {"VAR": "value"}, "Parameters": {...}}`)
	fs.IntVar(&o.DBPort, "db-port", runner.DefaultDBPort, "port of DynamoDB Local when it is started (ignored when AWS_ENDPOINT_URL_DYNAMODB is set)")
}

func serve(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o runner.ServeOptions
	commonFlags(fs, &o.Options)
	fs.StringVar(&o.Addr, "addr", "127.0.0.1:3000", "loopback address to serve the API on (env PORT overrides the port)")
	fs.IntVar(&o.Instances, "instances", 2, "instances (separate processes) per function")
	fs.DurationVar(&o.IntegrationTimeout, "integration-timeout", 29*time.Second, "API Gateway's wait for a function before it answers 504")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if port := os.Getenv("PORT"); port != "" {
		host, _, err := net.SplitHostPort(o.Addr)
		if err != nil {
			return err
		}
		o.Addr = net.JoinHostPort(host, port)
	}
	o.Log = stderr
	srv, err := runner.Serve(ctx, o)
	if err != nil {
		return err
	}
	defer srv.Close()
	select {
	case <-ctx.Done():
		fmt.Fprintln(stderr, "lambdalocal: stopping")
		return nil
	case err := <-srv.Err():
		return err
	}
}

func invoke(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) (bool, error) {
	fs := flag.NewFlagSet("invoke", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o runner.Options
	commonFlags(fs, &o)
	function := fs.String("function", "", "logical ID of the function to run (required)")
	eventPath := fs.String("event", "", `JSON event file; "-" reads stdin; empty sends {}`)
	if err := fs.Parse(args); err != nil {
		return false, err
	}
	if *function == "" {
		return false, errors.New("invoke: -function is required")
	}
	event := []byte("{}")
	switch *eventPath {
	case "":
	case "-":
		b, err := io.ReadAll(stdin)
		if err != nil {
			return false, err
		}
		event = b
	default:
		b, err := os.ReadFile(*eventPath)
		if err != nil {
			return false, fmt.Errorf("invoke: event: %w", err)
		}
		event = b
	}
	o.Log = stderr
	return runner.Invoke(ctx, o, *function, event, stdout)
}

func db(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("db", flag.ContinueOnError)
	fs.SetOutput(stderr)
	port := fs.Int("port", runner.DefaultDBPort, "port of DynamoDB Local (reached through 127.0.0.1)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return runner.DB(ctx, *port, stderr)
}

func tables(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("tables", flag.ContinueOnError)
	fs.SetOutput(stderr)
	template := fs.String("template", "template.yaml", "SAM template")
	def := os.Getenv(runner.EnvDynamoDBEndpoint)
	if def == "" {
		def = "http://127.0.0.1:8000"
	}
	endpoint := fs.String("endpoint", def, "DynamoDB endpoint (default $AWS_ENDPOINT_URL_DYNAMODB, else http://127.0.0.1:8000)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return runner.Tables(ctx, *template, *endpoint, stderr)
}

// errInvalid reports that validate found violations; they are already printed.
var errInvalid = errors.New("the template does not match the schema")

func validate(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	template := fs.String("template", "template.yaml", "SAM template")
	if err := fs.Parse(args); err != nil {
		return err
	}
	data, err := os.ReadFile(*template)
	if err != nil {
		return err
	}
	violations, err := samtemplate.Validate(data, strings.HasSuffix(*template, ".json"))
	if err != nil {
		return fmt.Errorf("%s: %w", *template, err)
	}
	for _, v := range violations {
		fmt.Fprintf(stdout, "%s: %s\n", *template, v)
	}
	if len(violations) > 0 {
		return fmt.Errorf("%s: %d violations: %w", *template, len(violations), errInvalid)
	}
	fmt.Fprintf(stdout, "%s: valid against goformation's CloudFormation + SAM schema\n", *template)
	return nil
}
