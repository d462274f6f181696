package runner_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/cmd/lambdalocal/internal/runner"
	"github.com/idemkit/idemkit/cmd/lambdalocal/internal/runtimeapi"
	"github.com/idemkit/idemkit/cmd/lambdalocal/internal/samtemplate"
	"github.com/idemkit/idemkit/internal/ddblocal/ddbtest"
)

// The example service's own template and sample events, at the module root.
var (
	serviceTemplate = filepath.Join("..", "..", "..", "..", "template.yaml")
	serviceEvents   = filepath.Join("..", "..", "..", "..", "events")
)

// ddbCall is one request that reached the counting DynamoDB endpoint.
type ddbCall struct {
	op string // X-Amz-Target without the API version, e.g. PutItem
	at time.Time
}

// countingDynamoDB is a loopback reverse proxy to the tests' DynamoDB Local that records every request.
type countingDynamoDB struct {
	URL   string
	mu    sync.Mutex
	calls []ddbCall
}

func newCountingDynamoDB(t testing.TB, target string) *countingDynamoDB {
	t.Helper()
	u, err := url.Parse(target)
	require.NoError(t, err)
	c := &countingDynamoDB{}
	proxy := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op := r.Header.Get("X-Amz-Target")
		if i := strings.LastIndexByte(op, '.'); i >= 0 {
			op = op[i+1:]
		}
		c.mu.Lock()
		c.calls = append(c.calls, ddbCall{op: op, at: time.Now()})
		c.mu.Unlock()
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	c.URL = srv.URL
	return c
}

func (c *countingDynamoDB) Calls() []ddbCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]ddbCall(nil), c.calls...)
}

// serviceFunction is one of the example service's functions, built by the runner as `lambdalocal serve` builds it.
type serviceFunction struct {
	fn        *samtemplate.Function
	bootstrap string
	event     string // a sample event under events/ whose invocation writes to DynamoDB
}

var (
	buildOnce sync.Once
	builtFns  map[string]*serviceFunction
	buildErr  error
	buildDir  string // removed by TestMain once the tests have run
)

// serviceFunctions builds PaymentFunction and UserFunction once per test binary.
func serviceFunctions(t testing.TB) map[string]*serviceFunction {
	t.Helper()
	buildOnce.Do(func() {
		tpl, err := samtemplate.Open(serviceTemplate)
		if err != nil {
			buildErr = err
			return
		}
		dir, err := os.MkdirTemp("", "lambdalocal-coldstart-")
		if err != nil {
			buildErr = err
			return
		}
		buildDir = dir
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		builtFns = map[string]*serviceFunction{}
		for name, event := range map[string]string{"PaymentFunction": "payment-create.json", "UserFunction": "user-create.json"} {
			fn, ok := tpl.Functions[name]
			if !ok {
				buildErr = fmt.Errorf("%s is not in %s", name, serviceTemplate)
				return
			}
			out := filepath.Join(dir, name, "bootstrap")
			if err := runner.Build(ctx, tpl.Dir, fn.CodeURI, out); err != nil {
				buildErr = err
				return
			}
			builtFns[name] = &serviceFunction{fn: fn, bootstrap: out, event: filepath.Join(serviceEvents, event)}
		}
	})
	require.NoError(t, buildErr)
	return builtFns
}

// removeBuilds deletes the bootstraps built by serviceFunctions; TestMain calls it after the tests.
func removeBuilds() {
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
}

// startService starts instances of a real function whose DynamoDB endpoint is endpoint and whose tables are
// fresh ones of this test.
func startService(t testing.TB, sf *serviceFunction, endpoint string, instances int) (*runtimeapi.Pool, *syncBuf) {
	t.Helper()
	client := ddbtest.Client(t)
	tables := map[string]map[string]string{sf.fn.Name: {
		"IDEMPOTENCY_TABLE": ddbtest.Table(t, client, "idem"),
		"PAYMENTS_TABLE":    ddbtest.Table(t, client, "payments"),
		"USERS_TABLE":       ddbtest.Table(t, client, "users"),
		"PROCESSOR_TABLE":   processorTable(t, client),
	}}
	log := &syncBuf{}
	pool, err := runtimeapi.Start(runtimeapi.Config{
		Function:  sf.fn.Name,
		Command:   sf.bootstrap,
		Dir:       filepath.Dir(sf.bootstrap),
		Env:       runner.FunctionEnv(sf.fn, filepath.Dir(sf.bootstrap), endpoint, tables),
		Timeout:   sf.fn.Timeout,
		Instances: instances,
		Output:    log,
	})
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool, log
}

// TestNoDynamoDBCallDuringInit: the real payment and user bootstraps create their DynamoDB client during init but
// send it nothing before their first invocation. Their AWS_ENDPOINT_URL_DYNAMODB is a counting proxy: it has seen
// no request once every instance is ready (init is over: the runtime is blocked in /next), none before the first
// invocation is handed over, and requests once that invocation runs.
func TestNoDynamoDBCallDuringInit(t *testing.T) {
	fns := serviceFunctions(t)
	for _, name := range []string{"PaymentFunction", "UserFunction"} {
		t.Run(name, func(t *testing.T) {
			sf := fns[name]
			ddb := newCountingDynamoDB(t, ddbtest.Endpoint(t))
			const instances = 2
			pool, log := startService(t, sf, ddb.URL, instances)

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			require.NoError(t, pool.WaitReady(ctx, instances), log.String())
			assert.Empty(t, ddb.Calls(), "no DynamoDB request during init of %d instances", instances)
			for _, in := range pool.Instances() {
				t.Logf("%s#%d ready in %s (pid %d)", name, in.N, in.ReadyIn, in.PID)
			}

			event, err := os.ReadFile(sf.event)
			require.NoError(t, err)
			handedOver := time.Now()
			res, err := pool.Invoke(ctx, event, runtimeapi.InvokeOptions{})
			require.NoError(t, err)
			require.False(t, res.Failed(), "%s\n%s", res.Payload, log.String())
			var proxyResp struct {
				StatusCode int `json:"statusCode"`
			}
			require.NoError(t, json.Unmarshal(res.Payload, &proxyResp))
			assert.Equal(t, http.StatusCreated, proxyResp.StatusCode, "%s", res.Payload)

			calls := ddb.Calls()
			require.NotEmpty(t, calls, "the first invocation talks to DynamoDB")
			var ops []string
			for _, c := range calls {
				assert.False(t, c.at.Before(handedOver), "%s at %s, before the invocation at %s", c.op, c.at, handedOver)
				ops = append(ops, c.op)
			}
			t.Logf("%s: 0 DynamoDB requests during init; first invocation: %s", name, strings.Join(ops, ", "))
		})
	}
}

// BenchmarkBootstrapColdStart starts one instance of each real bootstrap per iteration and reports its
// start-to-first-/next time and its resident memory once ready (idle, before any invocation).
func BenchmarkBootstrapColdStart(b *testing.B) {
	fns := serviceFunctions(b)
	for _, name := range []string{"PaymentFunction", "UserFunction"} {
		b.Run(name, func(b *testing.B) {
			sf := fns[name]
			ddb := newCountingDynamoDB(b, ddbtest.Endpoint(b))
			client := ddbtest.Client(b)
			tables := map[string]map[string]string{sf.fn.Name: {
				"IDEMPOTENCY_TABLE": ddbtest.Table(b, client, "idem"),
				"PAYMENTS_TABLE":    ddbtest.Table(b, client, "payments"),
				"USERS_TABLE":       ddbtest.Table(b, client, "users"),
			}}
			env := runner.FunctionEnv(sf.fn, filepath.Dir(sf.bootstrap), ddb.URL, tables)
			var ready []time.Duration
			var rssKB []int
			b.ResetTimer()
			for range b.N {
				pool, err := runtimeapi.Start(runtimeapi.Config{
					Function: sf.fn.Name, Command: sf.bootstrap, Dir: filepath.Dir(sf.bootstrap), Env: env,
					Timeout: sf.fn.Timeout, Instances: 1,
				})
				require.NoError(b, err)
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				err = pool.WaitReady(ctx, 1)
				cancel()
				if err != nil {
					pool.Close()
					b.Fatal(err)
				}
				in := pool.Instances()[0]
				ready = append(ready, in.ReadyIn)
				if kb, err := procStatusKB(in.PID, "VmRSS"); err == nil {
					rssKB = append(rssKB, kb)
				}
				pool.Close()
			}
			b.StopTimer()
			require.Empty(b, ddb.Calls(), "no DynamoDB request during init")
			sort.Slice(ready, func(i, j int) bool { return ready[i] < ready[j] })
			b.ReportMetric(ms(ready[len(ready)/2]), "ready-p50-ms")
			b.ReportMetric(ms(ready[len(ready)-1]), "ready-max-ms")
			if len(rssKB) > 0 {
				sort.Ints(rssKB)
				b.ReportMetric(float64(rssKB[len(rssKB)-1])/1024, "idle-rss-MiB")
			}
		})
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// procStatusKB reads one "Name: <n> kB" field of /proc/<pid>/status (Linux).
func procStatusKB(pid int, field string) (int, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if ok && name == field {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("%s not in /proc/%d/status", field, pid)
}

// processorTable creates a table shaped like ProcessorTable in template.yaml (partition key "reference"), the
// payment function's simulated card processor's, and deletes it when the test ends.
func processorTable(t testing.TB, client *dynamodb.Client) string {
	t.Helper()
	return ddbtest.TableWithKey(t, client, "processor", "reference")
}
