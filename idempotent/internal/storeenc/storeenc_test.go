package storeenc_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/idempotent/internal/storeenc"
)

func TestCeil(t *testing.T) {
	base := time.Unix(1_700_000_000, 0)
	for _, tc := range []struct {
		name     string
		in       time.Time
		sec, mil int64
	}{
		{"whole second", base, 1_700_000_000, 1_700_000_000_000},
		{"one nanosecond after", base.Add(time.Nanosecond), 1_700_000_001, 1_700_000_000_001},
		{"whole millisecond", base.Add(5 * time.Millisecond), 1_700_000_001, 1_700_000_000_005},
		{"inside a millisecond", base.Add(5*time.Millisecond + 1), 1_700_000_001, 1_700_000_000_006},
		{"last nanosecond of the second", base.Add(time.Second - 1), 1_700_000_001, 1_700_000_001_000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.sec, storeenc.CeilSeconds(tc.in))
			assert.Equal(t, tc.mil, storeenc.CeilMillis(tc.in))
		})
	}
}

func TestGzip(t *testing.T) {
	compressible := bytes.Repeat([]byte("a"), 64)
	for _, tc := range []struct {
		name      string
		resp      []byte
		threshold int
		want      bool
	}{
		{"off", compressible, 0, false},
		{"negative threshold is off", compressible, -1, false},
		{"below the threshold", compressible, 65, false},
		{"at the threshold", compressible, 64, true},
		{"above the threshold", compressible, 10, true},
		{"gzip would be larger", []byte("abcdefghij"), 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok, err := storeenc.Gzip(tc.resp, tc.threshold)
			require.NoError(t, err)
			assert.Equal(t, tc.want, ok)
			if !ok {
				assert.Nil(t, got)
				return
			}
			assert.Less(t, len(got), len(tc.resp))
			back, err := storeenc.Gunzip(got)
			require.NoError(t, err)
			assert.Equal(t, tc.resp, back)
		})
	}
}

func TestGunzipRefusesWhatIsNotGzip(t *testing.T) {
	_, err := storeenc.Gunzip([]byte(`{"not":"gzip"}`))
	assert.ErrorContains(t, err, "decompress response")
	z, ok, err := storeenc.Gzip(bytes.Repeat([]byte("b"), 200), 1)
	require.NoError(t, err)
	require.True(t, ok)
	_, err = storeenc.Gunzip(z[:len(z)-4]) // the trailer cut short
	assert.ErrorContains(t, err, "decompress response")
}
