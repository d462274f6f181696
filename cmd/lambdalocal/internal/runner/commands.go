package runner

// The lambdalocal commands (serve, invoke, db, tables) on top of the Stack that runner.go sets up.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"time"

	"github.com/idemkit/idemkit/cmd/lambdalocal/internal/gateway"
	"github.com/idemkit/idemkit/cmd/lambdalocal/internal/runtimeapi"
	"github.com/idemkit/idemkit/cmd/lambdalocal/internal/samtemplate"
	"github.com/idemkit/idemkit/internal/ddblocal"
)

// Server is `lambdalocal serve`: a Stack behind the API Gateway emulation.
type Server struct {
	*Stack
	// URL is the base URL the API is served on.
	URL string
	srv *http.Server
	ln  net.Listener
	err chan error
}

// ServeOptions configure Serve.
type ServeOptions struct {
	Options
	// Addr to listen on; loopback only. Empty means 127.0.0.1:3000.
	Addr string
	// IntegrationTimeout is API Gateway's wait for a function. Zero means 29s.
	IntegrationTimeout time.Duration
}

// Serve starts the stack and the HTTP server; it returns once both are up.
func Serve(ctx context.Context, opts ServeOptions) (*Server, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:3000"
	}
	host, _, err := net.SplitHostPort(opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("address %q: %w", opts.Addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("address %q: lambdalocal serves on a loopback address only", opts.Addr)
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	stack, err := Start(ctx, opts.Options)
	if err != nil {
		ln.Close()
		return nil, err
	}
	var routes []gateway.Route
	for _, r := range stack.Template.Routes() {
		if _, ok := stack.Pools[r.Function]; ok {
			routes = append(routes, gateway.Route{Path: r.Path, Method: r.Method, Function: r.Function, HTTPAPI: r.HTTPAPI, Payload: r.PayloadFormat})
		}
	}
	router, err := gateway.NewRouter(routes)
	if err != nil {
		ln.Close()
		stack.Close()
		return nil, err
	}
	fns := map[string]gateway.Invoker{}
	for name, p := range stack.Pools {
		fns[name] = p
	}
	s := &Server{
		Stack: stack,
		URL:   "http://" + ln.Addr().String(),
		ln:    ln,
		err:   make(chan error, 1),
	}
	s.srv = &http.Server{
		Handler: &gateway.Gateway{
			Router:             router,
			Functions:          fns,
			BinaryMediaTypes:   stack.Template.BinaryMediaTypes,
			IntegrationTimeout: opts.IntegrationTimeout,
			Log:                stack.log,
		},
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    gateway.ServerMaxHeaderBytes,
	}
	listed := router.Routes()
	sort.SliceStable(listed, func(i, j int) bool { return listed[i].Path < listed[j].Path })
	for _, r := range listed {
		stack.logf("mounted %-6s %s%s -> %s", r.Method, s.URL, r.Path, r.Function)
	}
	go func() { s.err <- s.srv.Serve(gateway.Listener(ln)) }()
	stack.logf("serving on %s (Ctrl-C to stop)", s.URL)
	return s, nil
}

// Close stops the HTTP server, then the stack.
func (s *Server) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
	s.Stack.Close()
}

// Invoke is `lambdalocal invoke`: runs one function once on event and writes the
// function's response (or error document) to out. failed reports a function error.
func Invoke(ctx context.Context, opts Options, function string, event []byte, out io.Writer) (failed bool, err error) {
	opts.Functions = []string{function}
	opts.Instances = 1
	stack, err := Start(ctx, opts)
	if err != nil {
		return false, err
	}
	defer stack.Close()
	pool := stack.Pools[function]
	// Lambda's own timeout ends the invocation; the margin covers init.
	ctx, cancel := context.WithTimeout(ctx, pool.Timeout()+30*time.Second)
	defer cancel()
	res, err := pool.Invoke(ctx, event, runtimeapi.InvokeOptions{})
	if err != nil {
		return false, err
	}
	if res.Failed() {
		stack.logf("%s failed (%s) in %s", function, res.ErrorType, res.Duration.Round(time.Millisecond))
	} else {
		stack.logf("%s succeeded in %s", function, res.Duration.Round(time.Millisecond))
	}
	if _, err := fmt.Fprintf(out, "%s\n", res.Payload); err != nil {
		return res.Failed(), err
	}
	return res.Failed(), nil
}

// DB is `lambdalocal db`: DynamoDB Local alone until ctx ends.
func DB(ctx context.Context, port int, log io.Writer) error {
	if port == 0 {
		port = DefaultDBPort
	}
	db, err := ddblocal.Start(ctx, ddblocal.Options{Port: port, Log: log})
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "lambdalocal: DynamoDB Local on %s (in memory; Ctrl-C to stop)\n", db.Endpoint())
	fmt.Fprintf(log, "lambdalocal: point clients at it with %s=%s\n", EnvDynamoDBEndpoint, db.Endpoint())
	select {
	case <-ctx.Done():
		return db.Stop()
	case <-db.Done():
		return errors.New("DynamoDB Local exited")
	}
}

// Err delivers the HTTP server's error if it stops on its own.
func (s *Server) Err() <-chan error { return s.err }

// Tables is `lambdalocal tables`: creates the template's tables on a running DynamoDB
// (the container of `make sam-local`, for instance) and enables their TTL.
func Tables(ctx context.Context, template, endpoint string, log io.Writer) error {
	tpl, err := samtemplate.Open(template)
	if err != nil {
		return err
	}
	if !answers(ctx, endpoint) {
		return fmt.Errorf("DynamoDB at %s does not answer", endpoint)
	}
	client, err := ddblocal.NewClient(ctx, endpoint)
	if err != nil {
		return err
	}
	if err := CreateTables(ctx, client, tpl.SortedTables()); err != nil {
		return err
	}
	for _, tb := range tpl.SortedTables() {
		fmt.Fprintf(log, "lambdalocal: table %s ready on %s\n", tb.Name, endpoint)
	}
	return nil
}
