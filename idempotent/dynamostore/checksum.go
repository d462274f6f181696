package dynamostore

import (
	"bytes"
	"context"
	"hash/crc32"
	"io"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// checksumMiddlewareID is the SDK's DynamoDB response checksum middleware (service/dynamodb/internal/customizations).
const checksumMiddlewareID = "DynamoDB:ResponseChecksumValidation"

// SkipAbsentChecksum is a dynamodb.Options function that makes the client check a response's CRC32 only when the
// response carries one (the X-Amz-Crc32 header), as the header's definition says.
//
// The SDK checks every response against that header and takes an absent header for a checksum of 0. DynamoDB
// leaves the header out of error responses, and DynamoDB Local and other compatible servers out of some or all,
// so every ConditionalCheckFailedException (each duplicate and each mismatch the store answers) then logs
// "WARN failed to close HTTP response body, this may affect connection reuse: ... checksum" (aws-sdk-go-v2
// issue 3545): a paid-for, alarming line per duplicate in CloudWatch, about nothing. Responses with the header
// are still checked. Pass it to the client the store uses:
//
//	db := dynamodb.NewFromConfig(cfg, dynamostore.SkipAbsentChecksum)
//
// (dynamodb.Options.DisableValidateResponseChecksum also silences it, by dropping the check everywhere.)
func SkipAbsentChecksum(o *dynamodb.Options) {
	o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
		if _, ok := stack.Deserialize.Get(checksumMiddlewareID); !ok {
			return nil // checking disabled, or a client without it: nothing to complete
		}
		// Inserted after (inside) the SDK's middleware, so it sees the raw response before the SDK wraps its body.
		return stack.Deserialize.Insert(absentChecksum{}, checksumMiddlewareID, middleware.After)
	})
}

// absentChecksum gives a response without X-Amz-Crc32 the checksum of the body as received, which is what
// "nothing to check" amounts to; a response with the header is left alone.
type absentChecksum struct{}

func (absentChecksum) ID() string { return "idemkit:SkipAbsentChecksum" }

func (absentChecksum) HandleDeserialize(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (
	middleware.DeserializeOutput, middleware.Metadata, error,
) {
	out, md, err := next.HandleDeserialize(ctx, in)
	if err != nil {
		return out, md, err
	}
	resp, ok := out.RawResponse.(*smithyhttp.Response)
	if !ok || resp.Body == nil || resp.Header.Get("X-Amz-Crc32") != "" {
		return out, md, err
	}
	body, rerr := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if rerr != nil {
		// Let the SDK's deserializer meet the same failure reading a body that ends where this one did.
		resp.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), errReader{rerr}))
		return out, md, err
	}
	resp.Header.Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE(body)), 10))
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return out, md, err
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }
