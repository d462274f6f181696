package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/handlers/payment/payment"
	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/internal/faultinject"
)

// Crash recovery through the local runner (issue #5, item 3): a PaymentFunction process is SIGKILLed while its
// completion is in flight, as Lambda loses an execution environment that crashes or runs out of memory.
//
// Each policy gets a second `lambdalocal serve` with one instance per function, whose functions reach the
// DynamoDB Local of TestMain's runner through a fault proxy in this process (AWS_ENDPOINT_URL_DYNAMODB). The
// proxy holds the payment's completion (its TransactWriteItems) either before DynamoDB sees it or after
// DynamoDB applied it, and tells the test, which then kills the bootstrap by PID.
//
// The functions run on the system clock in another process, so the test cannot move their time: it ends a
// claim's lease by rewriting the record's in_progress_expiration in DynamoDB to a moment in the past, which is
// exactly what the function's claim condition compares with its clock. Nothing sleeps.

// crashPolicies are the lease policies under test: the default (the variable unset) and refuse.
var crashPolicies = []struct {
	name   string
	policy string // IDEMPOTENCY_LEASE_POLICY, "" for unset
}{
	{"default policy (rerun)", ""},
	{"refuse policy", "refuse"},
}

func TestCrashRecovery(t *testing.T) {
	for _, p := range crashPolicies {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			cr := startCrashRunner(t, p.policy)
			t.Logf("second runner up in %s", time.Since(start).Round(time.Millisecond))

			t.Run("crash before the completion reaches DynamoDB", func(t *testing.T) {
				key := newKey(t)
				_, held := cr.crashDuringCompletion(t, key, faultinject.Latency)
				assert.Equal(t, faultinject.PhaseAtomicComplete, held.Phase)
				assert.Equal(t, "INPROGRESS", crashRecordStatus(t, key), "the claim outlives its invocation")
				assert.Equal(t, 0, crashPayments(t, key), "no payment: the completion never reached DynamoDB")

				// While the lease lasts (the function's timeout, 10 s, plus 1 s), the key is held.
				for range 2 {
					r := cr.post(t, key)
					p := assertProblem(t, r, http.StatusConflict)
					assert.Contains(t, p["type"], "in-progress")
					ra, err := strconv.Atoi(r.Header.Get("Retry-After"))
					require.NoError(t, err, "Retry-After %q", r.Header.Get("Retry-After"))
					assert.True(t, ra >= 1 && ra <= 11, "Retry-After %d", ra)
					t.Logf("while the lease lasts: %d, Retry-After %d", r.Status, ra)
				}

				endLease(t, key)
				if p.policy == "refuse" {
					for range 2 {
						r := cr.post(t, key)
						p := assertProblem(t, r, http.StatusConflict)
						assert.Contains(t, p["type"], "outcome-unknown")
						assert.Empty(t, r.Header.Get("Retry-After"), "retrying with this key cannot succeed")
					}
					assert.Equal(t, 0, crashPayments(t, key), "refused: nothing ran again")
					return
				}
				rerun := cr.post(t, key)
				assertCreated(t, rerun, 2000, "crash")
				replay := cr.post(t, key)
				assertReplay(t, rerun, replay)
				assert.Equal(t, 1, crashPayments(t, key), "one payment for the key")

				// On the wire: the crashed run's completion never left the proxy; the re-run's went through.
				var completions []faultinject.Record
				for _, r := range cr.inj.Records() {
					if r.Phase == faultinject.PhaseAtomicComplete {
						completions = append(completions, r)
					}
				}
				require.Len(t, completions, 2, "one completion per run")
				assert.Equal(t, faultinject.Latency, completions[0].Fault)
				assert.False(t, completions[0].Forwarded, "the crashed run's completion never reached DynamoDB")
				assert.True(t, completions[1].Forwarded)
				t.Logf("DynamoDB requests of this key's runs: %v", cr.inj.Counts())
			})

			t.Run("crash after DynamoDB applied the completion", func(t *testing.T) {
				key := newKey(t)
				cr.crashDuringCompletion(t, key, faultinject.ResponseLost)
				assert.Equal(t, "COMPLETED", crashRecordStatus(t, key))
				assert.Equal(t, 1, crashPayments(t, key), "the payment committed with the record")

				// The invocation died before answering, but its response is recorded: replayed under any policy,
				// with no lease to wait for.
				replay := cr.post(t, key)
				require.Equal(t, http.StatusCreated, replay.Status, "body %s", replay.Body)
				assert.Equal(t, "true", replay.Header.Get("Idempotent-Replayed"))
				var got struct {
					ID string `json:"id"`
				}
				require.NoError(t, json.Unmarshal(replay.Body, &got))
				assert.Equal(t, crashPaymentID(key), got.ID)
				assertReplay(t, replay, cr.post(t, key))
				assert.Equal(t, 1, crashPayments(t, key), "one payment for the key")
			})
			t.Logf("%s: done in %s", p.name, time.Since(start).Round(time.Millisecond))
		})
	}
}

// crashRunner is a `lambdalocal serve` whose functions reach DynamoDB through inj's proxy.
type crashRunner struct {
	url    string
	cmd    *exec.Cmd
	out    *syncBuffer
	inj    *faultinject.Injector
	client *http.Client
}

// startCrashRunner starts the proxy and the runner, and stops both when the test ends.
func startCrashRunner(t *testing.T, policy string) *crashRunner {
	t.Helper()
	env := map[string]string{}
	if policy != "" {
		env["IDEMPOTENCY_LEASE_POLICY"] = policy
	}
	return startProxiedRunner(t, env)
}

// startProxiedRunner starts a fault proxy in front of TestMain's DynamoDB Local and a second runner, one instance
// per function, whose functions reach DynamoDB through it; env overrides PaymentFunction's environment.
func startProxiedRunner(t *testing.T, env map[string]string) *crashRunner {
	t.Helper()
	cr := &crashRunner{
		out:    &syncBuffer{},
		inj:    faultinject.New(func(o *faultinject.Options) { o.IdempotencyTable = "IdempotencyTable" }),
		client: &http.Client{Timeout: 40 * time.Second},
	}
	handler, err := cr.inj.Proxy(dbEndpoint, nil)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	proxy := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = proxy.Serve(ln) }()
	t.Cleanup(func() { _ = proxy.Close() })

	apiPort, _, err := freePorts()
	require.NoError(t, err)
	cr.url = fmt.Sprintf("http://127.0.0.1:%d", apiPort)
	args := []string{"serve",
		"-template", filepath.Join(root, "template.yaml"),
		"-addr", fmt.Sprintf("127.0.0.1:%d", apiPort),
		"-instances", "1"}
	if len(env) > 0 {
		envVars := filepath.Join(t.TempDir(), "env.json")
		b, err := json.Marshal(map[string]map[string]string{"PaymentFunction": env})
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(envVars, b, 0o600))
		args = append(args, "-env-vars", envVars)
	}
	cr.cmd = exec.Command(runnerBin, args...)
	cr.cmd.Dir = root
	// The runner uses this DynamoDB as it is (the tables exist: TestMain's runner made them; CreateTable's
	// ResourceInUseException keeps them) and gives it to the functions.
	cr.cmd.Env = append(runnerEnv(), "AWS_ENDPOINT_URL_DYNAMODB=http://"+ln.Addr().String())
	cr.cmd.Stdout, cr.cmd.Stderr = cr.out, cr.out
	cr.cmd.WaitDelay = 10 * time.Second // as in TestMain: a child holding the pipe cannot make Wait hang
	require.NoError(t, cr.cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cr.cmd.Wait() }()
	t.Cleanup(func() {
		_ = cr.cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cr.cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("--- second lambdalocal output ---\n%s", cr.out.String())
		}
	})

	deadline := time.Now().Add(120 * time.Second)
	for {
		resp, err := cr.client.Get(cr.url + "/payments/pay_x")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("second lambdalocal exited early: %v\n%s", err, cr.out.String())
		case <-time.After(50 * time.Millisecond):
		}
		require.True(t, time.Now().Before(deadline), "second lambdalocal did not answer within 2 minutes:\n%s", cr.out.String())
	}
	assert.Contains(t, cr.out.String(), "using DynamoDB at http://"+ln.Addr().String())
	return cr
}

func (cr *crashRunner) post(t *testing.T, key string) response {
	t.Helper()
	r, err := cr.send(key)
	require.NoError(t, err)
	return r
}

func (cr *crashRunner) send(key string) (response, error) {
	req, err := http.NewRequest(http.MethodPost, cr.url+"/payments", strings.NewReader(paymentBody(2000, cardVisa, "crash")))
	if err != nil {
		return response{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	resp, err := cr.client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return response{Status: resp.StatusCode, Header: resp.Header, Body: b}, err
}

// crashDuringCompletion sends a first POST /payments with key, lets the proxy hold its completion (kind Latency:
// before DynamoDB sees it; ResponseLost: after DynamoDB applied it), SIGKILLs the PaymentFunction process and
// returns the in-flight request's answer, which is API Gateway's 502 for Lambda's Runtime.ExitError.
func (cr *crashRunner) crashDuringCompletion(t *testing.T, key string, kind faultinject.Kind) (response, faultinject.Call) {
	t.Helper()
	rememberKey(key)
	gate := make(chan struct{}) // never opened: the held request ends with its connection
	t.Cleanup(func() { close(gate) })
	held := make(chan faultinject.Call, 1)
	cr.inj.Clear()
	cr.inj.Reset()
	cr.inj.Add(faultinject.Rule{Phase: faultinject.PhaseAtomicComplete, When: faultinject.Nth(1),
		Fault: faultinject.Fault{Kind: kind, Gate: gate, Held: held}})
	defer cr.inj.Clear()

	pid := cr.paymentPID(t)
	answer := make(chan response, 1)
	failed := make(chan error, 1)
	go func() {
		r, err := cr.send(key)
		if err != nil {
			failed <- err
			return
		}
		answer <- r
	}()
	var call faultinject.Call
	select {
	case call = <-held:
	case err := <-failed:
		t.Fatalf("the first request ended before its completion was held: %v", err)
	case r := <-answer:
		t.Fatalf("the first request ended before its completion was held: %d %s", r.Status, r.Body)
	case <-time.After(30 * time.Second):
		t.Fatalf("no completion reached the proxy within 30s\n%s", cr.out.String())
	}
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL), "kill PaymentFunction pid %d", pid)
	t.Logf("killed PaymentFunction pid %d while its %s was held (%s)", pid, call, kind)

	var r response
	select {
	case r = <-answer:
	case err := <-failed:
		t.Fatalf("the in-flight request failed: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("no answer to the in-flight request within 30s of the kill")
	}
	require.Equal(t, http.StatusBadGateway, r.Status, "body %s", r.Body)
	assert.JSONEq(t, `{"message": "Internal server error"}`, string(r.Body))
	assert.Empty(t, r.Header.Get("Idempotent-Replayed"), "the answer is the gateway's, not the function's")
	return r, call
}

// paymentPID finds the live PaymentFunction bootstrap among the runner's children: the threads' children lists
// in /proc, then each child's executable (<build dir>/PaymentFunction/bootstrap). Linux only.
func (cr *crashRunner) paymentPID(t *testing.T) int {
	t.Helper()
	pid, err := cr.waitPaymentPID()
	require.NoError(t, err)
	return pid
}

// waitPaymentPID is paymentPID with an error, for goroutines other than the test's.
func (cr *crashRunner) waitPaymentPID() (int, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		found := childrenRunning(cr.cmd.Process.Pid, filepath.Join("PaymentFunction", "bootstrap"))
		if len(found) == 1 {
			return found[0], nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("want one PaymentFunction process under runner pid %d, found %v", cr.cmd.Process.Pid, found)
		}
		<-time.After(20 * time.Millisecond) // polling for a process the runner is starting (no lease involved)
	}
}

// childrenRunning lists the children of pid whose executable path ends in /suffix. Linux only.
func childrenRunning(pid int, suffix string) []int {
	var found []int
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, field := range strings.Fields(string(b)) {
			child, err := strconv.Atoi(field)
			if err != nil {
				continue
			}
			exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", child))
			if err == nil && strings.HasSuffix(exe, string(filepath.Separator)+suffix) {
				found = append(found, child)
			}
		}
	}
	return found
}

// crashScopeID is the idempotency record ID of POST /payments with key from an anonymous caller.
func crashScopeID(key string) string { return paymentScopeID("anonymous", key) }

// paymentScopeID is the idempotency record ID of POST /payments with key from principal, as apigw names it
// ("anonymous", "lambda:<principalId>"...). The runner sets AWS_LAMBDA_FUNCTION_NAME to the template's logical ID,
// which apigw puts in the scope.
func paymentScopeID(principal, key string) string {
	return idempotent.Scope{Function: "PaymentFunction", Principal: principal, Method: http.MethodPost,
		Route: payment.ResourcePayments}.ID(key)
}

func crashPaymentID(key string) string { return payment.PaymentID(crashScopeID(key)) }

// crashRecordStatus reads the key's idempotency record as stored ("" when absent).
func crashRecordStatus(t *testing.T, key string) string {
	t.Helper()
	out, err := dynamoClient().GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName:      aws.String("IdempotencyTable"),
		Key:            map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: crashScopeID(key)}},
		ConsistentRead: aws.Bool(true),
	})
	require.NoError(t, err)
	s, _ := out.Item["status"].(*types.AttributeValueMemberS)
	if s == nil {
		return ""
	}
	return s.Value
}

// crashPayments counts the payment items of the key with a scan of the payments table (by the id the service
// derives from the key's scope, the only id a payment for this key can have).
func crashPayments(t *testing.T, key string) int {
	t.Helper()
	items, err := scanAll(context.Background(), dynamoClient(), "PaymentsTable")
	require.NoError(t, err)
	n := 0
	id := crashPaymentID(key)
	for _, it := range items {
		if s, ok := it["id"].(*types.AttributeValueMemberS); ok && s.Value == id {
			n++
		}
	}
	return n
}

// endLease ends the claim's lease for the functions, which run on their own clock in another process: it rewrites
// the record's lease end (in_progress_expiration, epoch milliseconds) to a second ago, conditional on the record
// still being INPROGRESS. It is the only way this test advances time, and it never sleeps.
func endLease(t *testing.T, key string) {
	t.Helper()
	err := leaseEnded(context.Background(), key)
	var ccf *types.ConditionalCheckFailedException
	require.False(t, errors.As(err, &ccf), "the record is no longer INPROGRESS")
	require.NoError(t, err)
}

// leaseEnded rewrites the key's lease end to a second ago, on the condition that the record is still INPROGRESS
// (a *types.ConditionalCheckFailedException otherwise).
func leaseEnded(ctx context.Context, key string) error {
	past := time.Now().Add(-time.Second).UnixMilli()
	_, err := dynamoClient().UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           aws.String("IdempotencyTable"),
		Key:                 map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: crashScopeID(key)}},
		UpdateExpression:    aws.String("SET #lease = :past"),
		ConditionExpression: aws.String("#status = :inprogress"),
		ExpressionAttributeNames: map[string]string{
			"#lease": "in_progress_expiration", "#status": "status",
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":past":       &types.AttributeValueMemberN{Value: strconv.FormatInt(past, 10)},
			":inprogress": &types.AttributeValueMemberS{Value: "INPROGRESS"},
		},
	})
	return err
}
