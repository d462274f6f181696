package dynamostore

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/internal/storeenc"
)

// maxItemSize is DynamoDB's item size limit (400 KB, counted as 400 KiB: attribute names plus values).
const maxItemSize = 400 << 10

// sizeMargin keeps the size estimate on the safe side of the limit: a write DynamoDB refuses for its size would
// leave the claim INPROGRESS and, once the lease ends, invite a second execution.
const sizeMargin = 1 << 10

// key returns the primary key of record id.
func (s *Store) key(id string) map[string]types.AttributeValue {
	k := s.opts.KeyPrefix + id
	if s.opts.SortKeyAttr == "" {
		return map[string]types.AttributeValue{s.opts.IDAttr: str(k)}
	}
	return map[string]types.AttributeValue{
		s.opts.IDAttr:      str(s.opts.StaticPartitionKey),
		s.opts.SortKeyAttr: str(k),
	}
}

// item encodes rec. A COMPLETED record's response is stored per encodeData; tooLarge replaces it by the
// EncodingTooLarge marker.
func (s *Store) item(rec idempotent.Record, tooLarge bool) (map[string]types.AttributeValue, error) {
	it := s.key(rec.ID)
	it[s.opts.StatusAttr] = str(rec.Status.String())
	it[s.opts.ExpirationAttr] = num(ceilSeconds(rec.ExpiresAt))
	it[s.opts.ValidationAttr] = str(rec.Fingerprint)
	it[s.opts.OwnerAttr] = str(rec.Owner)
	switch rec.Status {
	case idempotent.StatusInProgress:
		it[s.opts.InProgressExpirationAttr] = num(ceilMillis(rec.LeaseEnd))
	case idempotent.StatusCompleted:
		if tooLarge {
			it[s.opts.DataEncodingAttr] = str(EncodingTooLarge)
			break
		}
		data, enc, err := s.encodeData(rec.Response)
		if err != nil {
			return nil, err
		}
		it[s.opts.DataAttr] = data
		if enc != "" {
			it[s.opts.DataEncodingAttr] = str(enc)
		}
	default:
		return nil, fmt.Errorf("dynamostore: cannot store a record with status %s", rec.Status)
	}
	return it, nil
}

// encodeData chooses the stored form of a response: gzip (B) from the threshold on when it is smaller, else the
// bytes as they are, S when they are valid UTF-8 (readable in the console, like Powertools' JSON string) and B
// otherwise.
func (s *Store) encodeData(resp []byte) (types.AttributeValue, string, error) {
	z, ok, err := storeenc.Gzip(resp, s.opts.CompressThreshold)
	if err != nil {
		return nil, "", fmt.Errorf("dynamostore: %w", err)
	}
	if ok {
		return &types.AttributeValueMemberB{Value: z}, EncodingGzip, nil
	}
	if utf8.Valid(resp) {
		return str(string(resp)), "", nil
	}
	return &types.AttributeValueMemberB{Value: append([]byte(nil), resp...)}, "", nil
}

// decoded is a record read from the table.
type decoded struct {
	rec idempotent.Record
	// tooLarge marks a COMPLETED record whose response was too large to store (EncodingTooLarge).
	tooLarge bool
}

// decode reads an item written by item.
func (s *Store) decode(it map[string]types.AttributeValue) (*decoded, error) {
	keyAttr := s.opts.IDAttr
	if s.opts.SortKeyAttr != "" {
		keyAttr = s.opts.SortKeyAttr
	}
	var d decoded
	var k, status string
	if err := s.getString(it, keyAttr, &k, true); err != nil {
		return nil, err
	}
	id, ok := strings.CutPrefix(k, s.opts.KeyPrefix)
	if !ok {
		return nil, fmt.Errorf("dynamostore: item key %q lacks the key prefix %q", k, s.opts.KeyPrefix)
	}
	d.rec.ID = id
	if err := s.getString(it, s.opts.StatusAttr, &status, true); err != nil {
		return nil, err
	}
	st, err := idempotent.ParseStatus(status)
	if err != nil {
		return nil, fmt.Errorf("dynamostore: item %s: %w", id, err)
	}
	d.rec.Status = st
	if err := s.getString(it, s.opts.ValidationAttr, &d.rec.Fingerprint, false); err != nil {
		return nil, err
	}
	if err := s.getString(it, s.opts.OwnerAttr, &d.rec.Owner, false); err != nil {
		return nil, err
	}
	var exp int64
	if err := s.getNumber(it, s.opts.ExpirationAttr, &exp); err != nil {
		return nil, err
	}
	d.rec.ExpiresAt = time.Unix(exp, 0)
	if st == idempotent.StatusInProgress {
		var lease int64
		if err := s.getNumber(it, s.opts.InProgressExpirationAttr, &lease); err != nil {
			return nil, err
		}
		d.rec.LeaseEnd = time.UnixMilli(lease)
		return &d, nil
	}

	var enc string
	if err := s.getString(it, s.opts.DataEncodingAttr, &enc, false); err != nil {
		return nil, err
	}
	if enc == EncodingTooLarge {
		d.tooLarge = true
		return &d, nil
	}
	var raw []byte
	switch v := it[s.opts.DataAttr].(type) {
	case *types.AttributeValueMemberS:
		raw = []byte(v.Value)
	case *types.AttributeValueMemberB:
		raw = v.Value
	case nil:
		return nil, fmt.Errorf("dynamostore: completed item %s has no %q attribute", id, s.opts.DataAttr)
	default:
		return nil, fmt.Errorf("dynamostore: item %s: attribute %q is %T, want S or B", id, s.opts.DataAttr, v)
	}
	switch enc {
	case "":
		d.rec.Response = raw
	case EncodingGzip:
		if d.rec.Response, err = storeenc.Gunzip(raw); err != nil {
			return nil, fmt.Errorf("dynamostore: item %s: %w", id, err)
		}
	default:
		return nil, fmt.Errorf("dynamostore: item %s: unknown data encoding %q", id, enc)
	}
	if d.rec.Response == nil {
		d.rec.Response = []byte{}
	}
	return &d, nil
}

func (s *Store) getString(it map[string]types.AttributeValue, name string, dst *string, required bool) error {
	av, ok := it[name]
	if !ok {
		if required {
			return fmt.Errorf("dynamostore: item has no %q attribute", name)
		}
		return nil
	}
	if _, isS := av.(*types.AttributeValueMemberS); !isS {
		return fmt.Errorf("dynamostore: attribute %q is %T, want S", name, av)
	}
	return attributevalue.Unmarshal(av, dst)
}

// getNumber reads the number attribute name, which must be present (every caller needs it).
func (s *Store) getNumber(it map[string]types.AttributeValue, name string, dst *int64) error {
	av, ok := it[name]
	if !ok {
		return fmt.Errorf("dynamostore: item has no %q attribute", name)
	}
	if _, isN := av.(*types.AttributeValueMemberN); !isN {
		return fmt.Errorf("dynamostore: attribute %q is %T, want N", name, av)
	}
	if err := attributevalue.Unmarshal(av, dst); err != nil {
		return fmt.Errorf("dynamostore: attribute %q: %w", name, err)
	}
	return nil
}

// itemSize estimates an item's size as DynamoDB counts it, erring high: names and values in bytes, a number as
// its decimal spelling plus one byte.
func itemSize(it map[string]types.AttributeValue) int {
	n := 0
	for name, av := range it {
		n += len(name)
		switch v := av.(type) {
		case *types.AttributeValueMemberS:
			n += len(v.Value)
		case *types.AttributeValueMemberB:
			n += len(v.Value)
		case *types.AttributeValueMemberN:
			n += len(v.Value) + 1
		default:
			n += 64 // not written by this package
		}
	}
	return n
}

func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

func num(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

// The instants' rounding is the one every store uses (storeenc).
var (
	ceilSeconds = storeenc.CeilSeconds
	ceilMillis  = storeenc.CeilMillis
)
