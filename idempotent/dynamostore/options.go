package dynamostore

import (
	"log/slog"
)

// Default attribute names: those of Powertools for AWS Lambda, so a table can be shared and operators recognise it.
// DefaultDataEncodingAttr is idemkit's own.
const (
	DefaultIDAttr                   = "id"
	DefaultStatusAttr               = "status"
	DefaultExpirationAttr           = "expiration"
	DefaultInProgressExpirationAttr = "in_progress_expiration"
	DefaultValidationAttr           = "validation"
	DefaultDataAttr                 = "data"
	DefaultOwnerAttr                = "owner"
	DefaultDataEncodingAttr         = "data_encoding"

	// DefaultStaticPartitionKey is the partition key value of every record in the sort-key layout.
	DefaultStaticPartitionKey = "idempotency"

	// DefaultCompressThreshold is the response size from which responses are gzip-compressed.
	DefaultCompressThreshold = 4 << 10
)

// Values of the data-encoding attribute. An item without the attribute holds its response as it is: in an S
// attribute when the response is valid UTF-8, in a B attribute otherwise.
const (
	// EncodingGzip: the data attribute (B) holds the gzip-compressed response.
	EncodingGzip = "gzip"
	// EncodingTooLarge: the response was too large for one item and was not stored; the data attribute is absent.
	// Duplicates get an error wrapping ErrResponseTooLarge instead of a second execution.
	EncodingTooLarge = "too-large"
)

// Options configures a Store. New and CreateTable fill in the defaults for fields left at their zero value, so
// the same optFns given to both describe the same table.
type Options struct {
	// IDAttr is the partition key attribute (type S). Default "id".
	IDAttr string
	// SortKeyAttr, when set, selects the sort-key layout: the partition key IDAttr holds StaticPartitionKey for
	// every record and the sort key SortKeyAttr (type S) holds KeyPrefix + record ID. This is the layout of
	// Powertools' sort_key_attr / static_pk_value, for tables shared with other data. Default "": the table has a
	// partition key only and it holds KeyPrefix + record ID.
	SortKeyAttr string
	// StaticPartitionKey is the partition key value of every record in the sort-key layout; ignored without
	// SortKeyAttr. Default "idempotency". All records then share one partition: DynamoDB's per-partition limits
	// (about 1000 writes/s) apply to the whole idempotency traffic of the table.
	StaticPartitionKey string
	// KeyPrefix is prepended to the record ID (a 64-hex SHA-256) to form the stored key, for example a function
	// name and "#" so several functions can share a table. Default "" (the bare record ID).
	KeyPrefix string

	// StatusAttr holds "INPROGRESS" or "COMPLETED" (S). Default "status".
	StatusAttr string
	// ExpirationAttr holds the end of retention in epoch seconds (N), rounded up; enable TTL on it.
	// Default "expiration".
	ExpirationAttr string
	// InProgressExpirationAttr holds the end of an INPROGRESS claim's lease in epoch milliseconds (N), rounded up.
	// Completed records do not have it. Default "in_progress_expiration".
	InProgressExpirationAttr string
	// ValidationAttr holds the payload fingerprint (S). Default "validation".
	ValidationAttr string
	// DataAttr holds the recorded response of a COMPLETED record: S when it is valid UTF-8 and stored as it is,
	// B when it is binary or compressed. Default "data".
	DataAttr string
	// OwnerAttr holds the token of the invocation that claimed the record (S); it fences completion and release
	// and stays on the completed record. Default "owner".
	OwnerAttr string
	// DataEncodingAttr (S) is present only when DataAttr does not hold the response as it is: EncodingGzip or
	// EncodingTooLarge. Default "data_encoding".
	DataEncodingAttr string

	// CompressThreshold is the response size in bytes from which a response is gzip-compressed; the compressed
	// form is kept only when it is smaller. Zero means DefaultCompressThreshold (4 KiB); negative disables
	// compression.
	CompressThreshold int

	// Logger receives a warning when a response is too large to be recorded. Default: slog.Default().
	Logger *slog.Logger
}

func (o *Options) setDefaults() {
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&o.IDAttr, DefaultIDAttr)
	def(&o.StatusAttr, DefaultStatusAttr)
	def(&o.ExpirationAttr, DefaultExpirationAttr)
	def(&o.InProgressExpirationAttr, DefaultInProgressExpirationAttr)
	def(&o.ValidationAttr, DefaultValidationAttr)
	def(&o.DataAttr, DefaultDataAttr)
	def(&o.OwnerAttr, DefaultOwnerAttr)
	def(&o.DataEncodingAttr, DefaultDataEncodingAttr)
	def(&o.StaticPartitionKey, DefaultStaticPartitionKey)
	if o.CompressThreshold == 0 {
		o.CompressThreshold = DefaultCompressThreshold
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

func resolve(optFns []func(*Options)) Options {
	var o Options
	for _, fn := range optFns {
		fn(&o)
	}
	o.setDefaults()
	return o
}
