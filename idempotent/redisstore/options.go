package redisstore

import "log/slog"

const (
	// DefaultKeyPrefix is prepended to record IDs to form their Redis keys.
	DefaultKeyPrefix = "idempotency:"
	// DefaultCompressThreshold is the response size from which responses are gzip-compressed.
	DefaultCompressThreshold = 4 << 10
	// DefaultMaxDataSize is the largest response, as stored (after compression), that a record keeps.
	DefaultMaxDataSize = 1 << 20
)

// Values of a record's data_encoding field. A record without the field holds its response as it is.
const (
	// EncodingGzip: the data field holds the gzip-compressed response.
	EncodingGzip = "gzip"
	// EncodingTooLarge: the response exceeded Options.MaxDataSize and was not stored; the data field is absent.
	// Duplicates get an error wrapping ErrResponseTooLarge instead of a second execution.
	EncodingTooLarge = "too-large"
)

// Options configures a Store; New fills in the defaults for fields left at their zero value.
type Options struct {
	// KeyPrefix is prepended to the record ID (a 64-hex SHA-256) to form the record's key, for example
	// "idempotency:payments:" so that several functions share one database, or a hash tag such as
	// "idempotency:{payments}:" to keep a function's records on one cluster slot (never needed: every command
	// touches one key). Default "idempotency:"; it cannot be empty, so that the records stay recognisable among
	// other keys.
	KeyPrefix string

	// CompressThreshold is the response size in bytes from which a response is gzip-compressed; the compressed
	// form is kept only when it is smaller. Zero means DefaultCompressThreshold (4 KiB); negative disables
	// compression.
	CompressThreshold int

	// MaxDataSize is the largest response, in bytes as stored (after compression), that a record keeps. A larger
	// one is not stored: the record is completed with EncodingTooLarge instead, so the handler never runs twice
	// for the key, and duplicates get ErrResponseTooLarge. It bounds the memory one record takes in the cache.
	// Zero or negative means DefaultMaxDataSize (1 MiB).
	MaxDataSize int

	// Logger receives a warning when a response is too large to be recorded. Default: slog.Default().
	Logger *slog.Logger
}

func resolve(optFns []func(*Options)) Options {
	var o Options
	for _, fn := range optFns {
		fn(&o)
	}
	if o.KeyPrefix == "" {
		o.KeyPrefix = DefaultKeyPrefix
	}
	if o.CompressThreshold == 0 {
		o.CompressThreshold = DefaultCompressThreshold
	}
	if o.MaxDataSize <= 0 {
		o.MaxDataSize = DefaultMaxDataSize
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}
