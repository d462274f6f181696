package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type eventCase struct {
	file     string
	function string
	status   int // the first status code in the README's "expected" column
}

// readEventsREADME parses the table of events/README.md, in its order (the order the events are meant to run).
func readEventsREADME(t *testing.T) []eventCase {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, "events", "README.md"))
	require.NoError(t, err)
	statusRe := regexp.MustCompile(`\b[1-5][0-9]{2}\b`)
	var cases []eventCase
	for _, line := range strings.Split(string(raw), "\n") {
		cols := strings.Split(line, "|")
		if len(cols) < 6 || !strings.HasPrefix(strings.TrimSpace(cols[1]), "`") {
			continue
		}
		file := strings.Trim(strings.TrimSpace(cols[1]), "`")
		status := statusRe.FindString(cols[4])
		require.NotEmpty(t, status, "events/README.md row %q names no status", line)
		code, _ := strconv.Atoi(status)
		cases = append(cases, eventCase{file: file, function: strings.TrimSpace(cols[2]), status: code})
	}
	require.NotEmpty(t, cases, "events/README.md has no table of events")
	return cases
}

// lambdaInvoke runs `lambdalocal invoke` on an event against the running DynamoDB Local and returns its
// stdout (the Lambda response JSON).
func lambdaInvoke(t *testing.T, function, event string, stdin []byte) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, runnerBin, "invoke", "-template", "template.yaml", "-function", function,
		"-event", event, "-db-port", strconv.Itoa(dbPort))
	cmd.Dir = root
	cmd.Env = runnerEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 10 * time.Second // a child left behind cannot hold the output pipes past the timeout
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	err := cmd.Run()
	require.NoError(t, err, "lambdalocal invoke -function %s -event %s\nstderr:\n%s", function, event, stderr.String())
	require.NotContains(t, stderr.String(), "starting DynamoDB Local", "invoke must reuse the running DynamoDB Local")
	return stdout.Bytes()
}

// TestEvents runs every file of events/ through `lambdalocal invoke` in the README's order, checking the status
// code the README promises. Payment and user events run as two parallel sequences (each keeps its order).
func TestEvents(t *testing.T) {
	cases := readEventsREADME(t)

	files, err := filepath.Glob(filepath.Join(root, "events", "*.json"))
	require.NoError(t, err)
	var onDisk, documented []string
	for _, f := range files {
		onDisk = append(onDisk, filepath.Base(f))
	}
	for _, c := range cases {
		documented = append(documented, c.file)
	}
	sort.Strings(documented)
	require.Equal(t, onDisk, documented, "every file in events/ is documented in events/README.md and vice versa")

	byFunction := map[string][]eventCase{}
	var functions []string
	for _, c := range cases {
		if byFunction[c.function] == nil {
			functions = append(functions, c.function)
		}
		byFunction[c.function] = append(byFunction[c.function], c)
		rememberEventKey(t, c.file)
	}
	for _, fn := range functions {
		t.Run(fn, func(t *testing.T) {
			t.Parallel()
			var createdID, createdBody string // from the sequence's 201, for the GET with a real id
			for _, c := range byFunction[fn] {
				t.Run(c.file, func(t *testing.T) {
					out := lambdaInvoke(t, c.function, "events/"+c.file, nil)
					resp := decodeLambdaResponse(t, out)
					assert.Equal(t, c.status, resp.StatusCode, "events/README.md says %d; body %s", c.status, resp.Body)
					for _, s := range []string{cardVisa, cardDeclined, `\"` + cvvEvents + `\"`} {
						assert.NotContains(t, string(out), s, "no card number or CVV in a response")
					}
					switch c.file { // details the README also states
					case "payment-create.json":
						assert.Equal(t, "false", resp.Headers["Idempotent-Replayed"])
						assert.Regexp(t, `^/payments/pay_`, resp.Headers["Location"])
					case "payment-replay.json":
						assert.Equal(t, "true", resp.Headers["Idempotent-Replayed"])
					case "payment-declined.json":
						assert.Contains(t, resp.Body, `"decline_code":"generic_decline"`)
					case "user-create.json":
						assert.Regexp(t, `^/users/usr_`, resp.Headers["Location"])
					}
					if resp.StatusCode == 201 && createdID == "" {
						loc := resp.Headers["Location"]
						createdID, createdBody = loc[strings.LastIndex(loc, "/")+1:], resp.Body
					}
					if strings.HasSuffix(c.file, "-get.json") {
						// As the README suggests: the same event with the id of the 201 gives 200 and that representation.
						require.NotEmpty(t, createdID, "an earlier event of %s created something", fn)
						ev := withID(t, c.file, createdID)
						got := decodeLambdaResponse(t, lambdaInvoke(t, c.function, "-", ev))
						assert.Equal(t, 200, got.StatusCode, "GET with the created id; body %s", got.Body)
						assert.JSONEq(t, createdBody, got.Body)
					}
					if resp.StatusCode >= 400 {
						assert.Equal(t, "application/problem+json", resp.Headers["Content-Type"])
					}
				})
			}
		})
	}
}

type lambdaResponse struct {
	StatusCode int               `json:"statusCode"`
	Headers    map[string]string `json:"headers"`
	Body       string            `json:"body"`
}

func decodeLambdaResponse(t *testing.T, out []byte) lambdaResponse {
	t.Helper()
	var resp lambdaResponse
	require.NoError(t, json.Unmarshal(out, &resp), "a Lambda response JSON on stdout: %s", out)
	return resp
}

// withID is a GET event of events/ with its id replaced in path and pathParameters.id.
func withID(t *testing.T, file, id string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, "events", file))
	require.NoError(t, err)
	var ev map[string]any
	require.NoError(t, json.Unmarshal(raw, &ev))
	params, ok := ev["pathParameters"].(map[string]any)
	require.True(t, ok, "%s has pathParameters", file)
	old, _ := params["id"].(string)
	require.NotEmpty(t, old)
	params["id"] = id
	ev["path"] = strings.Replace(ev["path"].(string), old, id, 1)
	if rc, ok := ev["requestContext"].(map[string]any); ok {
		if p, ok := rc["path"].(string); ok {
			rc["path"] = strings.Replace(p, old, id, 1)
		}
	}
	out, err := json.Marshal(ev)
	require.NoError(t, err)
	return out
}

// rememberEventKey adds an event's raw Idempotency-Key to the keys that must never be stored.
func rememberEventKey(t *testing.T, file string) {
	raw, err := os.ReadFile(filepath.Join(root, "events", file))
	require.NoError(t, err)
	var ev struct {
		Headers map[string]string `json:"headers"`
	}
	require.NoError(t, json.Unmarshal(raw, &ev), file)
	for k, v := range ev.Headers {
		if strings.EqualFold(k, "Idempotency-Key") {
			rememberKey(v)
		}
	}
}
