package payment

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/idemkit/idemkit/handlers/internal/awsenv"
	"github.com/idemkit/idemkit/handlers/internal/httpapi"
)

// Routes of the payment function (REST API resource templates).
const (
	ResourcePayments = "/payments"
	ResourcePayment  = "/payments/{id}"
)

// StatusSucceeded is the status of every stored payment: declines are answered 402 and store nothing.
const StatusSucceeded = "succeeded"

// IdempotencyKeyHeader is the request header the idempotency layer reads; the service reads it itself only when
// it runs without that layer (see Options.ScopeID).
const IdempotencyKeyHeader = "Idempotency-Key"

// Options configure a Service. The zero value of every field has a working default.
type Options struct {
	// Committer writes the new payment item. Default (nil): DirectCommitter over the service's DB.
	Committer Committer
	// Processor charges cards. Default (nil): a NewSimulatedProcessor.
	Processor Processor
	// ScopeID returns the idempotency scope ID of the request in ctx (with the idempotency engine:
	// idempotent.FromContext(ctx).ID). The payment ID is derived from it. Default (nil), or when it returns
	// false: the service derives a scope ID itself from the Idempotency-Key header, method and route (principal
	// "anonymous"), and answers 400 when the header is missing or malformed.
	ScopeID func(ctx context.Context) (string, bool)
	// Now is the clock (expiry checks, created_at). Default (nil): time.Now.
	Now func() time.Time
	// Logger receives one line per outcome, never card data. Default (nil): slog.Default().
	Logger *slog.Logger
}

// Service is the payment API: POST /payments and GET /payments/{id}.
type Service struct {
	db     DB
	table  string
	opts   Options
	router *httpapi.Router
}

// New returns the service over db and the payments table named table.
func New(db DB, table string, optFns ...func(*Options)) *Service {
	var o Options
	for _, fn := range optFns {
		fn(&o)
	}
	if o.Committer == nil {
		o.Committer = DirectCommitter{DB: db}
	}
	if o.Processor == nil {
		o.Processor = NewSimulatedProcessor()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	s := &Service{db: db, table: table, opts: o}
	s.router = httpapi.NewRouter(o.Logger,
		httpapi.Route{Resource: ResourcePayments, Method: http.MethodPost, Handler: s.create},
		httpapi.Route{Resource: ResourcePayment, Method: http.MethodGet, Handler: s.get},
	)
	return s
}

// Handle is the Lambda handler. It answers every outcome with a response and a nil error.
func (s *Service) Handle(ctx context.Context, req events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
	return s.router.Handle(ctx, req)
}

// Payment is the API representation of a payment.
type Payment struct {
	ID          string      `json:"id"`
	Amount      int64       `json:"amount"`
	Currency    string      `json:"currency"`
	Status      string      `json:"status"`
	Card        CardSummary `json:"card"`
	Description string      `json:"description,omitempty"`
	CreatedAt   string      `json:"created_at"`
}

// CardSummary is all of a card the API ever returns.
type CardSummary struct {
	Brand string `json:"brand"`
	Last4 string `json:"last4"`
}

// item is the stored payment. It holds no card number and no CVV: only brand, last four digits and expiry, which
// identify the card to its holder and let a retried request be matched against the stored payment, and which
// PCI DSS does not require to be protected once the full number is absent.
type item struct {
	ID              string     `dynamodbav:"id"`
	Amount          int64      `dynamodbav:"amount"`
	Currency        string     `dynamodbav:"currency"`
	Status          string     `dynamodbav:"status"`
	Card            storedCard `dynamodbav:"card"`
	Description     string     `dynamodbav:"description,omitempty"`
	AuthorizationID string     `dynamodbav:"authorization_id"`
	CreatedAt       string     `dynamodbav:"created_at"`
}

type storedCard struct {
	Brand    string `dynamodbav:"brand"`
	Last4    string `dynamodbav:"last4"`
	ExpMonth int    `dynamodbav:"exp_month"`
	ExpYear  int    `dynamodbav:"exp_year"`
}

func (it item) representation() Payment {
	return Payment{
		ID:          it.ID,
		Amount:      it.Amount,
		Currency:    it.Currency,
		Status:      it.Status,
		Card:        CardSummary{Brand: it.Card.Brand, Last4: it.Card.Last4},
		Description: it.Description,
		CreatedAt:   it.CreatedAt,
	}
}

// matches reports whether the stored payment is the one req asks for, as far as the stored attributes can tell.
func (it item) matches(req CreateRequest) bool {
	return it.Amount == req.Amount &&
		it.Currency == req.Currency &&
		it.Card.Brand == req.Card.Brand() &&
		it.Card.Last4 == req.Card.Last4() &&
		it.Card.ExpMonth == req.Card.ExpMonth &&
		it.Card.ExpYear == req.Card.ExpYear &&
		it.Description == req.Description
}

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// PaymentID derives the payment's ID from the idempotency scope ID: "pay_" and the first 128 bits of a
// domain-separated SHA-256 of the scope ID, in lower-case base32 (26 characters). The same request always maps
// to the same payment, so the payment's own conditional write stops a second payment even if the idempotency
// record is lost; the extra hash keeps the ID from revealing the idempotency record's key.
func PaymentID(scopeID string) string {
	sum := sha256.Sum256([]byte("idemkit/payment/v1\x00" + scopeID))
	return "pay_" + strings.ToLower(idEncoding.EncodeToString(sum[:16]))
}

var paymentIDPattern = regexp.MustCompile(`^pay_[a-z2-7]{26}$`)

// ValidPaymentID reports whether id has the shape PaymentID produces.
func ValidPaymentID(id string) bool { return paymentIDPattern.MatchString(id) }

func (s *Service) create(ctx context.Context, req events.APIGatewayProxyRequest) events.APIGatewayProxyResponse {
	obj, p := httpapi.ReadObject(req.Body, req.IsBase64Encoded)
	if p != nil {
		return p.Response()
	}
	now := s.opts.Now().UTC()
	in, errs := ParseCreateRequest(obj, now)
	if errs != nil {
		return httpapi.Validation(errs).Response()
	}
	scopeID, p := s.scopeID(ctx, req)
	if p != nil {
		return p.Response()
	}
	id := PaymentID(scopeID)
	log := s.opts.Logger.With("payment_id", id, "request_id", req.RequestContext.RequestID)

	// No read before charging: the processor de-duplicates by the reference, and the payment's write is
	// conditional on the payment not existing. Only when the processor says it had charged this reference already
	// (an earlier run of this very request charged the card) is there a payment to look for.
	auth, err := s.opts.Processor.Charge(ctx, Charge{Reference: id, Amount: in.Amount, Currency: in.Currency, Card: in.Card})
	var decline *DeclineError
	switch {
	case errors.As(err, &decline):
		log.InfoContext(ctx, "card declined", "decline_code", decline.Code, "card", in.Card)
		return declined(decline).Response()
	case errors.Is(err, ErrReferenceReused):
		log.WarnContext(ctx, "idempotency key reused for a different payment (processor)")
		return keyReused().Response()
	case err != nil:
		log.ErrorContext(ctx, "processor failed", "error", err.Error())
		return processorFailed().Response()
	}
	if auth.Replayed {
		// The earlier run's payment committed (its idempotency record then expired or was lost): answer with it.
		// Or it did not (its completion failed or came too late): write it now, with the first authorization.
		existing, err := s.load(ctx, id)
		if err != nil {
			return s.storeFailure(ctx, log, "read payment", err)
		}
		if existing != nil {
			return s.answerExisting(ctx, log, *existing, in)
		}
	}

	it := item{
		ID:              id,
		Amount:          in.Amount,
		Currency:        in.Currency,
		Status:          StatusSucceeded,
		Card:            storedCard{Brand: in.Card.Brand(), Last4: in.Card.Last4(), ExpMonth: in.Card.ExpMonth, ExpYear: in.Card.ExpYear},
		Description:     in.Description,
		AuthorizationID: auth.ID,
		CreatedAt:       now.Format(time.RFC3339),
	}
	w, err := s.putNew(it)
	if err != nil {
		log.ErrorContext(ctx, "build payment write", "error", err.Error())
		return httpapi.Internal().Response()
	}
	if err := s.opts.Committer.Commit(ctx, w); err != nil {
		if errors.Is(err, ErrConflict) {
			return s.resolveConflict(ctx, log, id, in)
		}
		return s.storeFailure(ctx, log, "write payment", err)
	}
	log.InfoContext(ctx, "payment created", "amount", in.Amount, "currency", in.Currency, "card", in.Card)
	return httpapi.Created(location(id), it.representation())
}

// resolveConflict handles a failed "payment does not exist" condition on the final write: another invocation
// of the same request (same scope, hence same ID) wrote the payment first. This happens only when two
// invocations ran at once without the idempotency layer serialising them (no layer, or a lease that ended while
// the first was still running). Both charged with the same processor reference, so the processor moved money
// once; the payment that won is the answer: the same payment -> 201 with it, a different one -> 422, and 409
// (retryable) only when it cannot be read back.
func (s *Service) resolveConflict(ctx context.Context, log *slog.Logger, id string, in CreateRequest) events.APIGatewayProxyResponse {
	log.WarnContext(ctx, "payment written concurrently by another invocation")
	existing, err := s.load(ctx, id)
	if err != nil || existing == nil {
		if err != nil {
			log.WarnContext(ctx, "read back concurrent payment failed", "error", err.Error())
		}
		return conflict().Response()
	}
	return s.answerExisting(ctx, log, *existing, in)
}

func (s *Service) answerExisting(ctx context.Context, log *slog.Logger, it item, in CreateRequest) events.APIGatewayProxyResponse {
	if !it.matches(in) {
		log.WarnContext(ctx, "idempotency key reused for a different payment")
		return keyReused().Response()
	}
	log.InfoContext(ctx, "payment already exists; answered without charging")
	return httpapi.Created(location(it.ID), it.representation())
}

func (s *Service) get(ctx context.Context, req events.APIGatewayProxyRequest) events.APIGatewayProxyResponse {
	id := req.PathParameters["id"]
	if !ValidPaymentID(id) {
		return httpapi.NotFound("No payment has this id.").Response()
	}
	log := s.opts.Logger.With("payment_id", id, "request_id", req.RequestContext.RequestID)
	it, err := s.load(ctx, id)
	if err != nil {
		return s.storeFailure(ctx, log, "read payment", err)
	}
	if it == nil {
		return httpapi.NotFound("No payment has the id " + id + ".").Response()
	}
	return httpapi.JSON(http.StatusOK, it.representation(), nil)
}

// load reads a payment with a consistent read, so a payment created a moment ago is found. nil means absent.
func (s *Service) load(ctx context.Context, id string) (*item, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.table),
		Key:            map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: id}},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, err
	}
	if len(out.Item) == 0 {
		return nil, nil
	}
	var it item
	if err := attributevalue.UnmarshalMap(out.Item, &it); err != nil {
		return nil, err
	}
	return &it, nil
}

// putNew builds the conditional write of a new payment.
func (s *Service) putNew(it item) (types.TransactWriteItem, error) {
	av, err := attributevalue.MarshalMap(it)
	if err != nil {
		return types.TransactWriteItem{}, err
	}
	expr, err := expression.NewBuilder().WithCondition(expression.AttributeNotExists(expression.Name("id"))).Build()
	if err != nil {
		return types.TransactWriteItem{}, err
	}
	return types.TransactWriteItem{Put: &types.Put{
		TableName:                           aws.String(s.table),
		Item:                                av,
		ConditionExpression:                 expr.Condition(),
		ExpressionAttributeNames:            expr.Names(),
		ExpressionAttributeValues:           expr.Values(),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureNone,
	}}, nil
}

// scopeID returns the idempotency scope ID from the engine, or derives one from the Idempotency-Key header when
// the service runs without the engine.
func (s *Service) scopeID(ctx context.Context, req events.APIGatewayProxyRequest) (string, *httpapi.Problem) {
	if s.opts.ScopeID != nil {
		if id, ok := s.opts.ScopeID(ctx); ok && id != "" {
			return id, nil
		}
	}
	vals := httpapi.Header(req, IdempotencyKeyHeader)
	switch {
	case len(vals) == 0:
		p := httpapi.Problem{
			Type:   httpapi.TypeBase + "idempotency-key-missing",
			Title:  "Idempotency-Key required",
			Status: http.StatusBadRequest,
			Detail: "POST /payments requires an Idempotency-Key header so that a retried request cannot charge twice.",
		}
		return "", &p
	case len(vals) > 1 || !validKey(vals[0]):
		p := httpapi.Problem{
			Type:   httpapi.TypeBase + "idempotency-key-malformed",
			Title:  "Malformed Idempotency-Key",
			Status: http.StatusBadRequest,
			Detail: "The Idempotency-Key header must be one value of 1 to 255 visible ASCII characters.",
		}
		return "", &p
	}
	sum := sha256.Sum256([]byte("anonymous\x00" + req.HTTPMethod + "\x00" + req.Resource + "\x00" + vals[0]))
	return hex.EncodeToString(sum[:]), nil
}

// validKey applies the engine's key grammar (idempotent.ValidateKey): 1-255 visible ASCII characters.
func validKey(k string) bool {
	if len(k) == 0 || len(k) > 255 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

func location(id string) string { return ResourcePayments + "/" + id }

func (s *Service) storeFailure(ctx context.Context, log *slog.Logger, op string, err error) events.APIGatewayProxyResponse {
	if awsenv.Transient(err) {
		log.WarnContext(ctx, op+" failed (transient)", "error", err.Error())
		return httpapi.Unavailable(1).Response()
	}
	log.ErrorContext(ctx, op+" failed", "error", err.Error())
	return httpapi.Internal().Response()
}

func declined(d *DeclineError) httpapi.Problem {
	return httpapi.Problem{
		Type:       httpapi.TypeBase + "card-declined",
		Title:      "Card declined",
		Status:     http.StatusPaymentRequired,
		Detail:     d.Message,
		Extensions: map[string]any{"decline_code": d.Code},
	}
}

func processorFailed() httpapi.Problem {
	return httpapi.Problem{
		Type:   httpapi.TypeBase + "processor-unavailable",
		Title:  "Payment processor unavailable",
		Status: http.StatusBadGateway,
		Detail: "The payment processor did not complete the charge. Retry with the same Idempotency-Key: the payment's reference keeps the processor from charging twice.",
	}
}

func keyReused() httpapi.Problem {
	return httpapi.Problem{
		Type:   httpapi.TypeBase + "idempotency-key-reused",
		Title:  "Idempotency-Key already used for another payment",
		Status: http.StatusUnprocessableEntity,
		Detail: "A payment with different details was already made with this Idempotency-Key. Use a new key for a new payment.",
	}
}

func conflict() httpapi.Problem {
	return httpapi.Problem{
		Type:    httpapi.TypeBase + "payment-conflict",
		Title:   "Payment being created concurrently",
		Status:  http.StatusConflict,
		Detail:  "Another request with the same Idempotency-Key created this payment at the same moment. Retry the request to receive it.",
		Headers: map[string]string{"Retry-After": "1"},
	}
}
