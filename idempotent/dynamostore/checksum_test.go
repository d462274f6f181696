package dynamostore_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/logging"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/dynamostore"
	"github.com/idemkit/idemkit/internal/ddblocal/ddbtest"
)

// sdkLog collects what the SDK logs.
type sdkLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *sdkLog) Logf(c logging.Classification, format string, v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, string(c)+" "+fmt.Sprintf(format, v...))
}

func (l *sdkLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// TestSkipAbsentChecksum: a duplicate (a claim whose condition fails) logs no SDK warning with the option, and
// does without it (aws-sdk-go-v2 issue 3545), so the test shows the option is what silences it.
func TestSkipAbsentChecksum(t *testing.T) {
	table := newTable(t)
	for _, tc := range []struct {
		name string
		opts []func(*dynamodb.Options)
		warn bool
	}{
		{"SDK default: a WARN per duplicate", nil, true},
		{"SkipAbsentChecksum: no warning", []func(*dynamodb.Options){dynamostore.SkipAbsentChecksum}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log sdkLog
			opts := append([]func(*dynamodb.Options){func(o *dynamodb.Options) { o.Logger = &log }}, tc.opts...)
			db := dynamodb.New(ddbtest.Client(t).Options(), opts...)
			engine := idempotent.New(dynamostore.New(db, table))
			req := idempotent.Request{Key: "checksum-" + strings.ReplaceAll(t.Name(), "/", "-"),
				Scope: idempotent.Scope{Principal: "p", Method: "POST", Route: "/r"}, Fingerprint: "fp"}
			run := func() idempotent.Result[string] {
				res, err := idempotent.Run(context.Background(), engine, req, idempotent.Spec[string]{},
					func(context.Context) (string, error) { return "ok", nil })
				require.NoError(t, err)
				return res
			}
			run()
			// A new engine has no local cache entry, so the duplicate's claim meets the record in DynamoDB.
			engine = idempotent.New(dynamostore.New(db, table))
			require.True(t, run().Replayed())
			if tc.warn {
				assert.Contains(t, log.String(), "WARN failed to close HTTP response body")
			} else {
				assert.Empty(t, log.String())
			}
		})
	}
}

// TestSkipAbsentChecksumKeepsPresentChecksums: a response whose X-Amz-Crc32 does not match its body is still
// reported; and a checksum that matches is quiet.
func TestSkipAbsentChecksumKeepsPresentChecksums(t *testing.T) {
	for _, tc := range []struct {
		header string
		warn   bool
	}{{"1", true}, {"2745614147", false}} { // crc32.ChecksumIEEE([]byte("{}"))
		t.Run(tc.header, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/x-amz-json-1.0")
				w.Header().Set("X-Amz-Crc32", tc.header)
				_, _ = w.Write([]byte("{}"))
			}))
			defer srv.Close()
			var log sdkLog
			db := dynamodb.New(ddbtest.Client(t).Options(), func(o *dynamodb.Options) {
				o.BaseEndpoint = aws.String(srv.URL)
				o.Logger = &log
			}, dynamostore.SkipAbsentChecksum)
			_, err := db.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String("t"),
				Key: map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: "x"}}})
			require.NoError(t, err)
			if tc.warn {
				assert.Contains(t, log.String(), "checksum")
			} else {
				assert.Empty(t, log.String())
			}
		})
	}
}
