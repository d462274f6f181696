package faultinject

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
)

// Phase is the step of the idempotency protocol a DynamoDB request belongs to.
type Phase uint8

const (
	// PhaseAny matches every phase in a Rule. Requests are never classified as PhaseAny.
	PhaseAny Phase = iota
	// PhaseOther is any request that is not an idempotency record operation: the handler's own reads and
	// writes, table management.
	PhaseOther
	// PhaseClaim is the PutItem of an INPROGRESS record.
	PhaseClaim
	// PhaseComplete is the PutItem of a COMPLETED record (completion without effects).
	PhaseComplete
	// PhaseAtomicComplete is a TransactWriteItems holding the Put of a COMPLETED record (completion with effects).
	PhaseAtomicComplete
	// PhaseRelease is a DeleteItem on the idempotency table.
	PhaseRelease
	// PhaseRead is a GetItem on the idempotency table.
	PhaseRead
)

var phaseNames = [...]string{
	PhaseAny:            "any",
	PhaseOther:          "other",
	PhaseClaim:          "claim",
	PhaseComplete:       "complete",
	PhaseAtomicComplete: "atomic-complete",
	PhaseRelease:        "release",
	PhaseRead:           "read",
}

// String returns the phase's name, such as "claim" or "atomic-complete".
func (p Phase) String() string {
	if int(p) < len(phaseNames) {
		return phaseNames[p]
	}
	return fmt.Sprintf("Phase(%d)", uint8(p))
}

// Kind is what goes wrong with a request.
type Kind uint8

const (
	// None: the request goes through untouched. Records of untouched requests carry it.
	None Kind = iota
	// Latency delays the request (Fault.Delay, or until Fault.Gate is closed), then forwards it. A request whose
	// context ends while it waits is not forwarded.
	Latency
	// Throttle answers HTTP 400 ProvisionedThroughputExceededException without forwarding.
	Throttle
	// ServerError answers HTTP 500 InternalServerError without forwarding.
	ServerError
	// ConnReset fails with a connection reset before the request reaches DynamoDB: nothing is applied.
	ConnReset
	// ResponseLost forwards the request, so DynamoDB applies it, then discards the answer and fails with a
	// connection reset: the ambiguous case. With Fault.Gate set, the failure waits for the gate (or the request's
	// context) after DynamoDB answered.
	ResponseLost
	// Timeout holds the request until its context ends, without forwarding it, and fails with the context's
	// error, as a client whose deadline passes while DynamoDB does not answer.
	Timeout
)

var kindNames = [...]string{
	None:         "none",
	Latency:      "latency",
	Throttle:     "throttle",
	ServerError:  "server-error",
	ConnReset:    "conn-reset",
	ResponseLost: "response-lost",
	Timeout:      "timeout",
}

// String returns the kind's name, such as "throttle" or "response-lost".
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Fault is what a Rule does to the requests it applies to.
type Fault struct {
	Kind Kind
	// Delay is how long Latency waits before forwarding, in real time: keep it to a few milliseconds and use Gate
	// for anything longer. Ignored when Gate is set.
	Delay time.Duration
	// Gate, when not nil, holds a Latency request before it is forwarded, and a ResponseLost request after
	// DynamoDB answered, until the gate is closed or the request's context ends.
	Gate <-chan struct{}
	// Held, when not nil, receives the Call when a request starts waiting on Gate or hanging in Timeout, so a
	// test knows the request is in flight. The send gives up when the request's context ends; use a buffered
	// channel.
	Held chan<- Call
	// Message is the message of a Throttle or ServerError answer. Empty means DynamoDB's usual text.
	Message string
}

// When selects, among the requests a rule matches, those the fault applies to, by their 1-based position.
// The zero value is Always.
type When struct {
	from, to int // inclusive; to == 0: no end
	every    int // when > 0: only every every-th request of the range
}

// Always applies the fault to every matching request.
func Always() When { return When{from: 1} }

// Nth applies the fault to the n-th matching request only (1-based).
func Nth(n int) When { return When{from: n, to: n} }

// First applies the fault to the first k matching requests.
func First(k int) When { return When{from: 1, to: k} }

// From applies the fault to the n-th matching request and every one after it.
func From(n int) When { return When{from: n} }

// Every applies the fault to every n-th matching request (n, 2n, 3n...): a steady rate of faults for a long
// run, spaced so that the SDK's own retry of a faulted request goes through.
func Every(n int) When { return When{from: n, every: max(n, 1)} }

func (w When) includes(n int) bool {
	from := max(w.from, 1)
	if n < from || (w.to != 0 && n > w.to) {
		return false
	}
	return w.every == 0 || (n-from)%w.every == 0
}

// Rule selects requests and the fault to inject into them. Empty selectors match everything.
type Rule struct {
	// Op is the DynamoDB operation, such as "PutItem". Empty matches every operation.
	Op string
	// Phase is the idempotency phase. PhaseAny (the zero value) matches every phase.
	Phase Phase
	// Table is the table the request names (for TransactWriteItems: the idempotency table of the completion, or
	// the first table). Empty matches every table.
	Table string
	// When picks the matching requests the fault applies to. The zero value is Always.
	When  When
	Fault Fault
}

// Call is one request as the injector classified it.
type Call struct {
	// Op is the DynamoDB operation from the X-Amz-Target header, such as "PutItem"; empty for a request without it.
	Op    string
	Phase Phase
	// Table is the table the request names; empty when none.
	Table string
}

func (c Call) String() string { return fmt.Sprintf("%s (%s) on %q", c.Op, c.Phase, c.Table) }

// Record is one request that went through the injector.
type Record struct {
	Call
	// Fault is the fault injected into the request; None when it went through untouched.
	Fault Kind
	// Forwarded reports whether the request was passed on to DynamoDB (whatever happened to it and its answer).
	Forwarded bool
	// At is when the request arrived at the injector.
	At time.Time
}

// Options configure an Injector. The zero value classifies requests on any table.
type Options struct {
	// IdempotencyTable is the table of the idempotency records. When set, only requests on it are classified as
	// claim, completion, release or read; the same operations on other tables are PhaseOther. Empty: every
	// table, so a GetItem or DeleteItem of the handler's own would count as read or release.
	IdempotencyTable string
	// StatusAttr is the status attribute of the records. Default "status".
	StatusAttr string
}

// Injector applies rules to DynamoDB requests and records every request. It is safe for concurrent use; rules
// may be added and cleared while requests flow.
type Injector struct {
	opts Options

	mu      sync.Mutex
	rules   []*ruleState
	records []Record
}

type ruleState struct {
	Rule
	seen int // matching requests so far
}

// New returns an Injector with no rules: every request goes through until rules are added.
func New(optFns ...func(*Options)) *Injector {
	var o Options
	for _, fn := range optFns {
		fn(&o)
	}
	if o.StatusAttr == "" {
		o.StatusAttr = "status"
	}
	return &Injector{opts: o}
}

// Add appends rules. For each request, every rule that matches it counts it; the first rule (in the order
// added) whose When includes its count injects its fault.
func (in *Injector) Add(rules ...Rule) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, r := range rules {
		in.rules = append(in.rules, &ruleState{Rule: r})
	}
}

// Clear removes every rule; the records stay.
func (in *Injector) Clear() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.rules = nil
}

// Records returns a copy of the records of every request so far, in arrival order.
func (in *Injector) Records() []Record {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]Record(nil), in.records...)
}

// Count returns how many requests of operation op (empty: any) in phase (PhaseAny: any) went through the
// injector: attempts on the wire, SDK retries included, faulted or not.
func (in *Injector) Count(op string, phase Phase) int {
	in.mu.Lock()
	defer in.mu.Unlock()
	n := 0
	for _, r := range in.records {
		if (op == "" || r.Op == op) && (phase == PhaseAny || r.Phase == phase) {
			n++
		}
	}
	return n
}

// Counts returns the number of requests per "Op/phase", such as "PutItem/claim".
func (in *Injector) Counts() map[string]int {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := map[string]int{}
	for _, r := range in.records {
		out[r.Op+"/"+r.Phase.String()]++
	}
	return out
}

// Reset forgets the records (rules and their counts stay).
func (in *Injector) Reset() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.records = nil
}

// decide records the call and returns the fault to inject and the record's index.
func (in *Injector) decide(c Call) (Fault, int) {
	in.mu.Lock()
	defer in.mu.Unlock()
	var fault Fault
	found := false
	for _, r := range in.rules {
		if (r.Op != "" && r.Op != c.Op) || (r.Phase != PhaseAny && r.Phase != c.Phase) || (r.Table != "" && r.Table != c.Table) {
			continue
		}
		r.seen++
		if !found && r.When.includes(r.seen) {
			fault, found = r.Fault, true
		}
	}
	in.records = append(in.records, Record{Call: c, Fault: fault.Kind, At: time.Now()})
	return fault, len(in.records) - 1
}

func (in *Injector) forwarded(i int) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.records[i].Forwarded = true
}

// Error is the failure of a ConnReset or ResponseLost request. It unwraps to syscall.ECONNRESET, so it reads
// (and is retried by the AWS SDK) like the connection reset it stands for.
type Error struct {
	Kind Kind
	Call Call
}

func (e *Error) Error() string {
	if e.Kind == ResponseLost {
		return fmt.Sprintf("faultinject: %s was applied by DynamoDB, then the connection was reset and its response lost", e.Call)
	}
	return fmt.Sprintf("faultinject: connection reset before %s reached DynamoDB", e.Call)
}

// Unwrap returns syscall.ECONNRESET.
func (e *Error) Unwrap() error { return syscall.ECONNRESET }

// RoundTripper returns an http.RoundTripper that injects the faults into the requests it passes to next
// (nil: http.DefaultTransport).
func (in *Injector) RoundTripper(next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return &transport{in: in, next: next}
}

// Client returns an *http.Client over RoundTripper(next), to set as the AWS SDK's HTTPClient
// (dynamodb.Options.HTTPClient). It follows no redirects: DynamoDB sends none.
func (in *Injector) Client(next http.RoundTripper) *http.Client {
	return &http.Client{
		Transport:     in.RoundTripper(next),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

type transport struct {
	in   *Injector
	next http.RoundTripper
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	body, err := readBody(req)
	if err != nil {
		return nil, err
	}
	call := t.in.classify(req.Header.Get("X-Amz-Target"), body)
	fault, idx := t.in.decide(call)
	ctx := req.Context()
	forward := func() (*http.Response, error) {
		out := req.Clone(ctx)
		if body != nil {
			out.Body = io.NopCloser(bytes.NewReader(body))
			out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
			out.ContentLength = int64(len(body))
		}
		t.in.forwarded(idx)
		return t.next.RoundTrip(out)
	}

	switch fault.Kind {
	case Latency:
		if err := wait(ctx, fault, call); err != nil {
			return nil, err
		}
		return forward()
	case Throttle:
		return errorResponse(req, http.StatusBadRequest, "ProvisionedThroughputExceededException",
			orDefault(fault.Message, "The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API.")), nil
	case ServerError:
		return errorResponse(req, http.StatusInternalServerError, "InternalServerError",
			orDefault(fault.Message, "Internal server error")), nil
	case ConnReset:
		return nil, &Error{Kind: ConnReset, Call: call}
	case ResponseLost:
		resp, err := forward()
		if err != nil {
			return nil, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if fault.Gate != nil {
			if err := wait(ctx, fault, call); err != nil {
				return nil, err
			}
		}
		return nil, &Error{Kind: ResponseLost, Call: call}
	case Timeout:
		notify(ctx, fault, call)
		<-ctx.Done()
		return nil, ctx.Err()
	default:
		return forward()
	}
}

// wait holds a request for fault.Gate, or else fault.Delay, unless its context ends first.
func wait(ctx context.Context, f Fault, c Call) error {
	if f.Gate != nil {
		notify(ctx, f, c)
		select {
		case <-f.Gate:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if f.Delay <= 0 {
		return nil
	}
	timer := time.NewTimer(f.Delay)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func notify(ctx context.Context, f Fault, c Call) {
	if f.Held == nil {
		return
	}
	select {
	case f.Held <- c:
	case <-ctx.Done():
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// errorResponse is a DynamoDB error as it travels on the wire: the status, the AWS JSON 1.0 content type, a
// request id and {"__type": "com.amazonaws.dynamodb.v20120810#<code>", "message": ...}.
func errorResponse(req *http.Request, status int, code, message string) *http.Response {
	b, _ := json.Marshal(struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}{"com.amazonaws.dynamodb.v20120810#" + code, message}) // two strings always marshal
	h := http.Header{}
	h.Set("Content-Type", "application/x-amz-json-1.0")
	h.Set("X-Amzn-Requestid", "FAULTINJECT"+strings.Repeat("0", 41))
	return &http.Response{
		Status:        fmt.Sprintf("%d %s", status, http.StatusText(status)),
		StatusCode:    status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          io.NopCloser(bytes.NewReader(b)),
		ContentLength: int64(len(b)),
		Request:       req,
	}
}

// readBody reads and closes the request's body; nil when there is none.
func readBody(req *http.Request) ([]byte, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, nil
	}
	defer req.Body.Close()
	b, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, fmt.Errorf("faultinject: read request body: %w", err)
	}
	return b, nil
}

// attr is a DynamoDB attribute value, of which only the string form matters here.
type attr struct {
	S *string `json:"S"`
}

type put struct {
	TableName string          `json:"TableName"`
	Item      map[string]attr `json:"Item"`
}

type named struct {
	TableName string `json:"TableName"`
}

// request is the part of a DynamoDB JSON request body that classification reads.
type request struct {
	TableName     string `json:"TableName"`
	Item          map[string]attr
	TransactItems []struct {
		Put            *put   `json:"Put"`
		Update         *named `json:"Update"`
		Delete         *named `json:"Delete"`
		ConditionCheck *named `json:"ConditionCheck"`
	} `json:"TransactItems"`
}

// classify tells the operation and the idempotency phase of a request from its X-Amz-Target header and body.
func (in *Injector) classify(target string, body []byte) Call {
	c := Call{Op: target[strings.LastIndexByte(target, '.')+1:], Phase: PhaseOther}
	var r request
	if len(body) == 0 || json.Unmarshal(body, &r) != nil {
		return c
	}
	c.Table = r.TableName
	idem := func(table string) bool {
		return in.opts.IdempotencyTable == "" || table == in.opts.IdempotencyTable
	}
	switch c.Op {
	case "PutItem":
		if idem(r.TableName) {
			c.Phase = in.putPhase(r.Item, PhaseClaim, PhaseComplete)
		}
	case "DeleteItem":
		if idem(r.TableName) {
			c.Phase = PhaseRelease
		}
	case "GetItem":
		if idem(r.TableName) {
			c.Phase = PhaseRead
		}
	case "TransactWriteItems":
		for _, it := range r.TransactItems {
			var table string
			switch {
			case it.Put != nil:
				table = it.Put.TableName
				if idem(table) && in.putPhase(it.Put.Item, PhaseOther, PhaseAtomicComplete) == PhaseAtomicComplete {
					c.Table, c.Phase = table, PhaseAtomicComplete
					return c
				}
			case it.Update != nil:
				table = it.Update.TableName
			case it.Delete != nil:
				table = it.Delete.TableName
			case it.ConditionCheck != nil:
				table = it.ConditionCheck.TableName
			}
			if c.Table == "" {
				c.Table = table
			}
		}
	}
	return c
}

// putPhase is inProgress or completed by the item's status, else PhaseOther.
func (in *Injector) putPhase(item map[string]attr, inProgress, completed Phase) Phase {
	s := item[in.opts.StatusAttr].S
	switch {
	case s == nil:
		return PhaseOther
	case *s == "INPROGRESS":
		return inProgress
	case *s == "COMPLETED":
		return completed
	}
	return PhaseOther
}

// Retryer is the AWS SDK's standard retryer with its policy made explicit for fault tests: maxAttempts attempts
// (the SDK's default is 3), the same errors retried, but 1 ms apart instead of the jittered backoff of up to
// seconds, and without the client-side retry quota, so every retry the SDK would make happens at once and is
// counted at the transport.
func Retryer(maxAttempts int) aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = maxAttempts
		o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return time.Millisecond, nil })
		o.RateLimiter = ratelimit.None
	})
}
