// Package storeenc holds what the stores share in encoding a record: the rounding of its instants and the gzip
// form of a large response. Each store keeps its own layout (DynamoDB attributes, Redis hash fields); only these
// rules must be the same everywhere, so that a record means the same on every store.
package storeenc

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"time"
)

// CeilSeconds is t in epoch seconds rounded up, so retention is never shortened. A record stored with expiration
// E is expired at now exactly when E <= floor(now) in seconds.
func CeilSeconds(t time.Time) int64 {
	s := t.Unix()
	if t.Nanosecond() > 0 {
		s++
	}
	return s
}

// CeilMillis is t in epoch milliseconds rounded up, so a lease is never shortened.
func CeilMillis(t time.Time) int64 {
	ms := t.UnixMilli()
	if t.Nanosecond()%int(time.Millisecond) != 0 {
		ms++
	}
	return ms
}

// Gzip returns resp compressed when threshold > 0, resp is at least threshold bytes long and the compressed form
// is smaller; otherwise ok is false and resp is to be stored as it is.
func Gzip(resp []byte, threshold int) (compressed []byte, ok bool, err error) {
	if threshold <= 0 || len(resp) < threshold {
		return nil, false, nil
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(resp); err != nil {
		return nil, false, fmt.Errorf("compress response: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, false, fmt.Errorf("compress response: %w", err)
	}
	if buf.Len() >= len(resp) {
		return nil, false, nil
	}
	return buf.Bytes(), true, nil
}

// Gunzip reverses Gzip. A stored form that is not gzip, or is cut short, is an error.
func Gunzip(data []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("decompress response: %w", err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("decompress response: %w", err)
	}
	return out, nil
}
