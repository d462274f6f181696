package runtimeapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

// The test binary doubles as the function's bootstrap: Config.Command is
// os.Args[0] and helperEnv selects what the process does. This exercises the real
// aws-lambda-go runtime client without a go build in the tests.
const helperEnv = "RUNTIMEAPI_TEST_HELPER"

// gateEnv is the URL a "gated" helper GETs before it starts its runtime loop.
const gateEnv = "RUNTIMEAPI_TEST_GATE"

func runHelper(mode string) {
	switch mode {
	case "lambda":
		lambda.Start(helperHandler)
	case "gated":
		// Init blocks on the test's gate URL, so a test can look at an instance that is not ready yet and knows
		// a lower bound of its init time without sleeping.
		resp, err := http.Get(os.Getenv(gateEnv))
		if err != nil {
			fmt.Fprintln(os.Stderr, "gate:", err)
			os.Exit(4)
		}
		resp.Body.Close()
		lambda.Start(helperHandler)
	case "crash-at-init":
		fmt.Fprintln(os.Stderr, "boom at init")
		os.Exit(3)
	case "init-error":
		api := "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + "/2018-06-01/runtime/init/error"
		req, _ := http.NewRequest(http.MethodPost, api, strings.NewReader(`{"errorType":"Config.Missing","errorMessage":"TABLE is not set"}`))
		req.Header.Set("Lambda-Runtime-Function-Error-Type", "Config.Missing")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		os.Exit(1)
	case "raw":
		rawRuntime()
	default:
		fmt.Fprintln(os.Stderr, "unknown helper mode", mode)
		os.Exit(2)
	}
}

type helperEvent struct {
	Echo    json.RawMessage `json:"echo,omitempty"`
	SleepMs int             `json:"sleepMs,omitempty"`
	Exit    int             `json:"exit,omitempty"`
	Panic   string          `json:"panic,omitempty"`
	Error   string          `json:"error,omitempty"`
	Env     []string        `json:"env,omitempty"`
	Context bool            `json:"context,omitempty"`
	Big     int             `json:"big,omitempty"`
	Log     string          `json:"log,omitempty"`
}

func helperHandler(ctx context.Context, ev helperEvent) (any, error) {
	started := time.Now()
	if ev.Log != "" {
		fmt.Println(ev.Log)
	}
	if ev.SleepMs > 0 {
		time.Sleep(time.Duration(ev.SleepMs) * time.Millisecond)
	}
	switch {
	case ev.Exit != 0:
		os.Exit(ev.Exit)
	case ev.Panic != "":
		panic(ev.Panic)
	case ev.Error != "":
		return nil, errors.New(ev.Error)
	case ev.Big > 0:
		return strings.Repeat("x", ev.Big), nil
	case len(ev.Env) > 0:
		out := map[string]string{}
		for _, k := range ev.Env {
			out[k] = os.Getenv(k)
		}
		return out, nil
	case ev.Context:
		lc, _ := lambdacontext.FromContext(ctx)
		dl, _ := ctx.Deadline()
		return map[string]any{
			"requestId":   lc.AwsRequestID,
			"arn":         lc.InvokedFunctionArn,
			"remainingMs": time.Until(dl).Milliseconds(),
			"traceId":     ctx.Value("x-amzn-trace-id"),
			"pid":         os.Getpid(),
			"startNs":     started.UnixNano(),
			"endNs":       time.Now().UnixNano(),
		}, nil
	}
	return ev.Echo, nil
}

// rawRuntime speaks the Runtime API by hand to check the server's answers to
// mistakes a real client never makes, and reports the status codes it saw.
func rawRuntime() {
	base := "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + "/2018-06-01/runtime"
	for {
		resp, err := http.Get(base + "/invocation/next")
		if err != nil {
			os.Exit(1)
		}
		event, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
		report := map[string]any{
			"nextStatus": resp.StatusCode,
			"headers": map[string]string{
				"requestId": id,
				"deadline":  resp.Header.Get("Lambda-Runtime-Deadline-Ms"),
				"arn":       resp.Header.Get("Lambda-Runtime-Invoked-Function-Arn"),
				"trace":     resp.Header.Get("Lambda-Runtime-Trace-Id"),
			},
			"event": json.RawMessage(event),
		}
		post := func(path, body string, hdr map[string]string) int {
			req, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(body))
			for k, v := range hdr {
				req.Header.Set(k, v)
			}
			r, err := http.DefaultClient.Do(req)
			if err != nil {
				return -1
			}
			r.Body.Close()
			return r.StatusCode
		}
		report["wrongIdStatus"] = post("/invocation/not-"+id+"/response", "{}", nil)
		report["lateInitErrorStatus"] = post("/init/error", "{}", nil)
		var mode struct {
			Mode string `json:"mode"`
		}
		_ = json.Unmarshal(event, &mode)
		switch mode.Mode {
		case "error-header-only":
			post("/invocation/"+id+"/error", "not json", map[string]string{"Lambda-Runtime-Function-Error-Type": "Custom.Kind"})
		default:
			var buf bytes.Buffer
			_ = json.NewEncoder(&buf).Encode(report)
			post("/invocation/"+id+"/response", buf.String(), nil)
		}
		// A second answer for the same id is refused: it is no longer running.
		_ = post("/invocation/"+id+"/response", "{}", nil)
	}
}
