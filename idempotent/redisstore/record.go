package redisstore

import (
	"fmt"
	"strconv"
	"time"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/internal/storeenc"
)

// malformedError reports a record this package cannot read: written by something else, or edited by hand. No
// retry can fix it, so it counts as permanent.
type malformedError struct {
	id, reason string
}

func (e *malformedError) Error() string { return "record " + e.id + " is malformed: " + e.reason }

// encodeData chooses the stored form of a response: gzip from the threshold on when that is smaller, else the
// bytes as they are. Redis strings are binary-safe, so nothing else is needed.
func (s *Store) encodeData(resp []byte) ([]byte, string, error) {
	z, ok, err := storeenc.Gzip(resp, s.opts.CompressThreshold)
	if err != nil {
		return nil, "", err
	}
	if ok {
		return z, EncodingGzip, nil
	}
	if resp == nil {
		resp = []byte{}
	}
	return resp, "", nil
}

// decoded is a record as read from the server.
type decoded struct {
	rec idempotent.Record
	// tooLarge marks a COMPLETED record whose response was too large to store (EncodingTooLarge).
	tooLarge bool
}

// decode reads the values of recordFields, as HMGET and the claim script return them. It returns nil when the
// record is absent (no status).
func (s *Store) decode(id string, vals []any) (*decoded, error) {
	if len(vals) != len(recordFields) {
		return nil, &malformedError{id, fmt.Sprintf("%d fields, want %d", len(vals), len(recordFields))}
	}
	str := func(i int) (string, bool, error) {
		switch v := vals[i].(type) {
		case nil:
			return "", false, nil
		case bool: // a Lua false that a server sent as a boolean: an absent field
			if v {
				return "", false, &malformedError{id, fmt.Sprintf("field %q is true", recordFields[i])}
			}
			return "", false, nil
		case string:
			return v, true, nil
		default:
			return "", false, &malformedError{id, fmt.Sprintf("field %q is %T", recordFields[i], v)}
		}
	}
	num := func(i int) (int64, error) {
		v, ok, err := str(i)
		if err != nil {
			return 0, err
		}
		if !ok {
			return 0, &malformedError{id, fmt.Sprintf("no %q field", recordFields[i])}
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, &malformedError{id, fmt.Sprintf("field %q is not an integer: %q", recordFields[i], v)}
		}
		return n, nil
	}

	status, ok, err := str(0)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, nil
	}
	var d decoded
	d.rec.ID = id
	if d.rec.Status, err = idempotent.ParseStatus(status); err != nil {
		return nil, &malformedError{id, err.Error()}
	}
	exp, err := num(1)
	if err != nil {
		return nil, err
	}
	d.rec.ExpiresAt = time.Unix(exp, 0)
	if d.rec.Fingerprint, _, err = str(3); err != nil {
		return nil, err
	}
	if d.rec.Owner, _, err = str(4); err != nil {
		return nil, err
	}
	if d.rec.Status == idempotent.StatusInProgress {
		lease, err := num(2)
		if err != nil {
			return nil, err
		}
		d.rec.LeaseEnd = time.UnixMilli(lease)
		return &d, nil
	}

	enc, _, err := str(6)
	if err != nil {
		return nil, err
	}
	if enc == EncodingTooLarge {
		d.tooLarge = true
		return &d, nil
	}
	data, ok, err := str(5)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, &malformedError{id, "completed record has no data field"}
	}
	switch enc {
	case "":
		d.rec.Response = []byte(data)
	case EncodingGzip:
		if d.rec.Response, err = storeenc.Gunzip([]byte(data)); err != nil {
			return nil, &malformedError{id, err.Error()}
		}
	default:
		return nil, &malformedError{id, fmt.Sprintf("unknown data encoding %q", enc)}
	}
	return &d, nil
}

// The instants' rounding is the one every store uses (storeenc).
var (
	ceilSeconds = storeenc.CeilSeconds
	ceilMillis  = storeenc.CeilMillis
)
