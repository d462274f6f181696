package redisstore

import (
	"io"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/idempotent"
)

func TestOptionsDefaults(t *testing.T) {
	o := New(nil).Options()
	assert.Equal(t, DefaultKeyPrefix, o.KeyPrefix)
	assert.Equal(t, DefaultCompressThreshold, o.CompressThreshold)
	assert.Equal(t, DefaultMaxDataSize, o.MaxDataSize)
	assert.NotNil(t, o.Logger)

	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	o = New(nil, func(o *Options) {
		o.KeyPrefix, o.CompressThreshold, o.MaxDataSize, o.Logger = "p:", -1, -5, logger
	}).Options()
	assert.Equal(t, "p:", o.KeyPrefix)
	assert.Equal(t, -1, o.CompressThreshold, "negative disables compression and is kept")
	assert.Equal(t, DefaultMaxDataSize, o.MaxDataSize, "zero or negative means the default")
	assert.Same(t, logger, o.Logger)
}

// decode reads what HMGET and the claim script return: nil for an absent field, and false where a server sends a
// Lua false as a RESP3 boolean.
func TestDecodeAbsentFields(t *testing.T) {
	s := New(nil)
	for name, absent := range map[string]any{"nil": nil, "false": false} {
		t.Run(name, func(t *testing.T) {
			d, err := s.decode("id", []any{"COMPLETED", "100", absent, "fp", "o", "data", absent})
			require.NoError(t, err)
			assert.Equal(t, idempotent.StatusCompleted, d.rec.Status)
			assert.Equal(t, "data", string(d.rec.Response))
			assert.Equal(t, int64(100), d.rec.ExpiresAt.Unix())

			d, err = s.decode("id", []any{absent, absent, absent, absent, absent, absent, absent})
			require.NoError(t, err)
			assert.Nil(t, d, "no status: no record")
		})
	}
	_, err := s.decode("id", []any{"COMPLETED", "100", nil, true, "o", "data", nil})
	require.Error(t, err)
	assert.True(t, Permanent(err))
	_, err = s.decode("id", []any{"COMPLETED", int64(100), nil, "fp", "o", "data", nil})
	require.ErrorContains(t, err, "int64")
	_, err = s.decode("id", []any{"COMPLETED"})
	require.ErrorContains(t, err, "1 fields, want 7")

	d, err := s.decode("id", []any{"COMPLETED", "100", nil, "fp", "o", "", nil})
	require.NoError(t, err)
	assert.NotNil(t, d.rec.Response, "an empty response is recorded, not absent")
	assert.Empty(t, d.rec.Response)
}

func TestEncodeData(t *testing.T) {
	s := New(nil, func(o *Options) { o.CompressThreshold = 10 })
	data, enc, err := s.encodeData(nil)
	require.NoError(t, err)
	assert.Equal(t, "", enc)
	assert.NotNil(t, data, "an empty response is stored as an empty string")
	data, enc, err = s.encodeData([]byte("aaaaaaaaa")) // below the threshold
	require.NoError(t, err)
	assert.Equal(t, "", enc)
	assert.Equal(t, "aaaaaaaaa", string(data))
	_, enc, err = s.encodeData([]byte("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"))
	require.NoError(t, err)
	assert.Equal(t, EncodingGzip, enc)
	_, enc, err = s.encodeData([]byte("abcdefghij")) // at the threshold, but gzip is larger
	require.NoError(t, err)
	assert.Equal(t, "", enc)
}
