package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/idemkit/idemkit/idempotent"
)

// ErrResponseTooLarge reports a key whose first execution completed with a response too large for one DynamoDB
// item (400 KB, after compression). Such a response is not stored; the record is kept COMPLETED with the
// EncodingTooLarge marker instead, so the handler never runs a second time for the key within retention. A
// duplicate request with the same payload then fails with an error wrapping ErrResponseTooLarge and
// idempotent.ErrResponseUnavailable (the engine passes it on as is; apigw answers 409); one with another payload
// still gets ErrPayloadMismatch.
var ErrResponseTooLarge = fmt.Errorf("dynamostore: the recorded response was too large to store: %w", idempotent.ErrResponseUnavailable)

// API is the part of the DynamoDB client this package uses: the item calls of a Store and the table calls of
// CreateTable. *dynamodb.Client satisfies it; a test fake embeds API and overrides the calls it exercises.
type API interface {
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)

	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	DescribeTimeToLive(ctx context.Context, in *dynamodb.DescribeTimeToLiveInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTimeToLiveOutput, error)
	UpdateTimeToLive(ctx context.Context, in *dynamodb.UpdateTimeToLiveInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateTimeToLiveOutput, error)
}

var _ API = (*dynamodb.Client)(nil)

// Store is an idempotent.Store on a DynamoDB table. It is safe for concurrent use; create one per function at
// init time and share it.
type Store struct {
	client API
	table  string
	opts   Options

	// fence is the condition of Complete and Release: the record is INPROGRESS and held by :owner. The owner
	// value is added per call. Release's condition also accepts an absent record.
	fenceNames   map[string]string
	fenceCond    string
	releaseNames map[string]string
	releaseCond  string

	// claim holds the claim condition without and with takeover, built once: only the instants change per call.
	claim [2]claimExpr
}

// claimExpr is a claim condition built by the expression package with stand-in instants, and the placeholders
// that hold them.
type claimExpr struct {
	cond   *string
	names  map[string]string
	values map[string]types.AttributeValue // the stand-ins; copied per call with the real instants
	// seconds and millis are the placeholders of the instant in epoch seconds (expiry) and, with takeover, in
	// epoch milliseconds (lease).
	seconds, millis string
}

var _ idempotent.Store = (*Store)(nil)

// New returns a Store on table. It panics when two record attributes are given the same name, a configuration
// error no request could survive.
func New(client API, table string, optFns ...func(*Options)) *Store {
	o := resolve(optFns)
	seen := map[string]string{}
	for field, name := range map[string]string{
		"IDAttr": o.IDAttr, "SortKeyAttr": o.SortKeyAttr, "StatusAttr": o.StatusAttr,
		"ExpirationAttr": o.ExpirationAttr, "InProgressExpirationAttr": o.InProgressExpirationAttr,
		"ValidationAttr": o.ValidationAttr, "DataAttr": o.DataAttr, "OwnerAttr": o.OwnerAttr,
		"DataEncodingAttr": o.DataEncodingAttr,
	} {
		if name == "" {
			continue
		}
		if other, dup := seen[name]; dup {
			panic(fmt.Sprintf("dynamostore: Options.%s and Options.%s both name attribute %q", field, other, name))
		}
		seen[name] = field
	}
	s := &Store{client: client, table: table, opts: o}
	s.fenceCond = "#status = :inprogress AND #owner = :owner"
	s.fenceNames = map[string]string{"#status": o.StatusAttr, "#owner": o.OwnerAttr}
	s.releaseCond = "attribute_not_exists(#id) OR (" + s.fenceCond + ")"
	s.releaseNames = map[string]string{"#id": o.IDAttr, "#status": o.StatusAttr, "#owner": o.OwnerAttr}
	s.claim[0] = newClaimExpr(o, false)
	s.claim[1] = newClaimExpr(o, true)
	return s
}

// Options returns a copy of the store's options with defaults applied.
func (s *Store) Options() Options { return s.opts }

// fenceValues returns the values of the fence condition for owner.
func (s *Store) fenceValues(owner string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		":inprogress": str(idempotent.StatusInProgress.String()),
		":owner":      str(owner),
	}
}

// Stand-ins for the instants of the claim condition while it is built, distinct so that their placeholders can be
// told apart.
const (
	standInSeconds = -1
	standInMillis  = -2
)

// newClaimExpr builds the claim condition: the key is absent, or the record has expired at now, or (with takeover)
// it is INPROGRESS and its lease has ended at now. Both instants compare as "<=" on whole units, matching
// Record.Expired and Record.LeaseEnded on the rounded-up stored values. Building it is the costly part of a claim
// (the builder parses and names everything), so it is done once with stand-in instants whose placeholders
// claimInput fills per call.
func newClaimExpr(o Options, takeover bool) claimExpr {
	name := expression.NameNoDotSplit
	cond := expression.AttributeNotExists(name(o.IDAttr)).
		Or(name(o.ExpirationAttr).LessThanEqual(expression.Value(standInSeconds)))
	if takeover {
		cond = cond.Or(expression.And(
			name(o.StatusAttr).Equal(expression.Value(idempotent.StatusInProgress.String())),
			name(o.InProgressExpirationAttr).LessThanEqual(expression.Value(standInMillis)),
		))
	}
	expr, err := expression.NewBuilder().WithCondition(cond).Build()
	if err != nil {
		// Only empty attribute names make the builder fail, and resolve gives every name a default.
		panic(fmt.Sprintf("dynamostore: claim condition: %v", err))
	}
	ce := claimExpr{cond: expr.Condition(), names: expr.Names(), values: expr.Values()}
	for k, v := range ce.values {
		if n, ok := v.(*types.AttributeValueMemberN); ok {
			switch n.Value {
			case strconv.Itoa(standInSeconds):
				ce.seconds = k
			case strconv.Itoa(standInMillis):
				ce.millis = k
			}
		}
	}
	if ce.seconds == "" || (takeover && ce.millis == "") {
		panic("dynamostore: claim condition: stand-in instants not found among the expression's values")
	}
	return ce
}

// claimInput returns the condition, names and values of a claim at c.Now. The condition and names are shared by
// every call (the SDK only reads them); the values are a new map.
func (s *Store) claimInput(c idempotent.Claim) (cond *string, names map[string]string, values map[string]types.AttributeValue) {
	ce := &s.claim[0]
	if c.Takeover {
		ce = &s.claim[1]
	}
	values = make(map[string]types.AttributeValue, len(ce.values))
	for k, v := range ce.values {
		values[k] = v
	}
	values[ce.seconds] = num(c.Now.Unix())
	if ce.millis != "" {
		values[ce.millis] = num(c.Now.UnixMilli())
	}
	return ce.cond, ce.names, values
}

// Claim implements idempotent.Store with one conditional PutItem. When the condition fails the live record comes
// back in the same round trip (ReturnValuesOnConditionCheckFailure ALL_OLD); only if DynamoDB leaves it out does
// Claim read it with one consistent GetItem.
func (s *Store) Claim(ctx context.Context, c idempotent.Claim) (*idempotent.Record, error) {
	rec := c.Record
	rec.Status = idempotent.StatusInProgress
	rec.Response = nil
	it, err := s.item(rec, false)
	if err != nil {
		return nil, err
	}
	cond, names, values := s.claimInput(c)
	_, err = s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                           aws.String(s.table),
		Item:                                it,
		ConditionExpression:                 cond,
		ExpressionAttributeNames:            names,
		ExpressionAttributeValues:           values,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err == nil {
		return nil, nil
	}
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) {
		return nil, fmt.Errorf("dynamostore: claim %s: %w", rec.ID, classify(err))
	}
	var old *decoded
	if len(ccf.Item) > 0 {
		if old, err = s.decode(ccf.Item); err != nil {
			return nil, fmt.Errorf("dynamostore: claim %s: %w", rec.ID, err)
		}
	} else {
		if old, err = s.get(ctx, rec.ID); err != nil {
			return nil, fmt.Errorf("dynamostore: claim %s: %w", rec.ID, classify(err))
		}
		if old == nil || old.rec.Expired(c.Now) {
			return nil, fmt.Errorf("dynamostore: claim %s: conflicting record gone: %w", rec.ID, idempotent.ErrRecordChanged)
		}
	}
	if old.rec.Status == idempotent.StatusInProgress && old.rec.Owner == rec.Owner {
		// Our own claim: an earlier attempt of this PutItem was applied and its answer lost, and the SDK's retry
		// met the item it wrote. Owner tokens are random per claim, so no other invocation holds this one.
		return nil, nil
	}
	if old.tooLarge && old.rec.Fingerprint == rec.Fingerprint {
		return nil, fmt.Errorf("dynamostore: claim %s: %w", rec.ID, ErrResponseTooLarge)
	}
	return &old.rec, nil
}

// Complete implements idempotent.Store. Without effects it is one PutItem conditioned on the fence (the record is
// INPROGRESS and held by rec.Owner); with effects it is one TransactWriteItems holding that Put first and the
// effects after it, with a ClientRequestToken derived from the owner so that a retry of a committed transaction
// succeeds without writing again.
//
// A response that would make the item exceed DynamoDB's 400 KB limit is not stored: the record is completed with
// the EncodingTooLarge marker instead (see ErrResponseTooLarge), Complete returns nil and a warning is logged.
func (s *Store) Complete(ctx context.Context, rec idempotent.Record, effects []idempotent.Effect) error {
	rec.Status = idempotent.StatusCompleted
	rec.LeaseEnd = time.Time{}
	it, err := s.completedItem(ctx, rec)
	if err != nil {
		return err
	}
	if len(effects) > 0 {
		return s.completeTx(ctx, rec, it, effects)
	}
	_, err = s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                           aws.String(s.table),
		Item:                                it,
		ConditionExpression:                 aws.String(s.fenceCond),
		ExpressionAttributeNames:            s.fenceNames,
		ExpressionAttributeValues:           s.fenceValues(rec.Owner),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err == nil {
		return nil
	}
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		if sameItem(ccf.Item, it) {
			// The item already is exactly what we write: an earlier attempt committed and only its answer was
			// lost (an SDK retry). Reporting ErrFenced would be false.
			return nil
		}
		return fmt.Errorf("dynamostore: complete %s: %s: %w", rec.ID, s.fenceReason(ccf.Item, rec.Owner), idempotent.ErrFenced)
	}
	return fmt.Errorf("dynamostore: complete %s: %w", rec.ID, classify(err))
}

// completedItem encodes the COMPLETED record rec, or its EncodingTooLarge form with a warning when the response
// would make the item exceed DynamoDB's limit.
func (s *Store) completedItem(ctx context.Context, rec idempotent.Record) (map[string]types.AttributeValue, error) {
	it, err := s.item(rec, false)
	if err != nil {
		return nil, err
	}
	if size := itemSize(it); size > maxItemSize-sizeMargin {
		s.opts.Logger.WarnContext(ctx, "idempotency response too large to record; duplicates will get an error instead of a replay",
			slog.String("id", rec.ID), slog.Int("response_bytes", len(rec.Response)), slog.Int("item_bytes", size))
		return s.item(rec, true)
	}
	return it, nil
}

// permanentCodes are DynamoDB's answers that no retry can change: a malformed request (a bad expression, an item
// over 400 KB), a table that does not exist (a misconfigured table name), and credentials or permissions that
// do not allow the call.
var permanentCodes = map[string]bool{
	"ValidationException":                 true,
	"ResourceNotFoundException":           true,
	"AccessDeniedException":               true,
	"UnrecognizedClientException":         true,
	"MissingAuthenticationTokenException": true,
	"InvalidSignatureException":           true,
}

// invalid reports whether DynamoDB refused the request for good (permanentCodes).
func invalid(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && permanentCodes[ae.ErrorCode()]
}

// classify marks a failure no retry can fix with idempotent.ErrPermanent, so the engine does not retry it and
// the adapters answer 500 rather than a 503 inviting retries that meet the same refusal. Anything else
// (throttling, 5xx, connection resets, timeouts) stays as it is: transient.
func classify(err error) error {
	if invalid(err) {
		return fmt.Errorf("%w (%w)", idempotent.ErrPermanent, err)
	}
	return err
}

// Release implements idempotent.Store with one DeleteItem conditioned on the fence or on the record's absence: a
// retry whose first attempt deleted the record (its answer lost) succeeds, without relying on the old item that
// a failed condition returns.
func (s *Store) Release(ctx context.Context, id, owner string) error {
	_, err := s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                           aws.String(s.table),
		Key:                                 s.key(id),
		ConditionExpression:                 aws.String(s.releaseCond),
		ExpressionAttributeNames:            s.releaseNames,
		ExpressionAttributeValues:           s.fenceValues(owner),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err == nil {
		return nil
	}
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return fmt.Errorf("dynamostore: release %s: %s: %w", id, s.fenceReason(ccf.Item, owner), idempotent.ErrFenced)
	}
	return fmt.Errorf("dynamostore: release %s: %w", id, classify(err))
}

// Get implements idempotent.Store with one strongly consistent GetItem. A record marked EncodingTooLarge comes
// back COMPLETED with a nil Response.
func (s *Store) Get(ctx context.Context, id string, now time.Time) (*idempotent.Record, error) {
	d, err := s.get(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("dynamostore: get %s: %w", id, classify(err))
	}
	if d == nil || d.rec.Expired(now) {
		return nil, nil
	}
	return &d.rec, nil
}

func (s *Store) get(ctx context.Context, id string) (*decoded, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.table),
		Key:            s.key(id),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, err
	}
	if len(out.Item) == 0 {
		return nil, nil
	}
	return s.decode(out.Item)
}

// fenceReason says why a fenced write failed, from the item DynamoDB returned (ALL_OLD), without revealing tokens.
func (s *Store) fenceReason(old map[string]types.AttributeValue, owner string) string {
	if len(old) == 0 {
		return "record absent"
	}
	var status, holder string
	_ = s.getString(old, s.opts.StatusAttr, &status, false)
	_ = s.getString(old, s.opts.OwnerAttr, &holder, false)
	if status != idempotent.StatusInProgress.String() {
		return "record is " + status
	}
	if holder != owner {
		return "record held by another invocation"
	}
	return "condition failed"
}

func sameItem(a, b map[string]types.AttributeValue) bool {
	return len(a) > 0 && maps.EqualFunc(a, b, func(x, y types.AttributeValue) bool { return reflect.DeepEqual(x, y) })
}
