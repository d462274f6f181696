package user

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"io"
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

// Routes of the user function (REST API resource templates).
const (
	ResourceUsers = "/users"
	ResourceUser  = "/users/{id}"
)

// EmailKeyPrefix prefixes the partition key of the item that reserves an e-mail address.
const EmailKeyPrefix = "EMAIL#"

// DB is the part of *dynamodb.Client the service calls, declared here so unit tests can fake it.
type DB interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

// Options configure a Service. The zero value of every field has a working default.
type Options struct {
	// ScopeID returns the idempotency scope ID of the request in ctx (with the idempotency engine:
	// idempotent.FromContext(ctx).ID); the user ID is then derived from it. Default (nil), or when it returns
	// false: a random ID. Unlike payments, an Idempotency-Key is optional here.
	ScopeID func(ctx context.Context) (string, bool)
	// Rand is the source of random IDs. Default (nil): crypto/rand.Reader.
	Rand io.Reader
	// Now is the clock for created_at. Default (nil): time.Now.
	Now func() time.Time
	// Logger receives one line per outcome, never the e-mail address. Default (nil): slog.Default().
	Logger *slog.Logger
	// Effect hands one write of the registration to the idempotency engine, to commit in the same transaction as
	// the idempotency record (with the engine: idempotent.AddEffect, wrapped with apigw.WithMergedClaim so the
	// claim and the record are that one transaction). It returns false when the write was not taken, and the
	// service then runs the registration transaction itself and judges its outcome. Default (nil): never taken.
	Effect func(ctx context.Context, w types.TransactWriteItem) bool
}

// Service is the user API: POST /users and GET /users/{id}.
type Service struct {
	db     DB
	table  string
	opts   Options
	router *httpapi.Router
}

// New returns the service over db and the users table named table.
func New(db DB, table string, optFns ...func(*Options)) *Service {
	var o Options
	for _, fn := range optFns {
		fn(&o)
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	s := &Service{db: db, table: table, opts: o}
	s.router = httpapi.NewRouter(o.Logger,
		httpapi.Route{Resource: ResourceUsers, Method: http.MethodPost, Handler: s.create},
		httpapi.Route{Resource: ResourceUser, Method: http.MethodGet, Handler: s.get},
	)
	return s
}

// Handle is the Lambda handler. It answers every outcome with a response and a nil error.
func (s *Service) Handle(ctx context.Context, req events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
	return s.router.Handle(ctx, req)
}

// User is the API representation of a user.
type User struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Email     string `json:"email"`
	CreatedAt string `json:"created_at"`
}

const (
	kindUser  = "user"
	kindEmail = "email"
)

type userItem struct {
	ID        string `dynamodbav:"id"`
	Kind      string `dynamodbav:"kind"`
	Name      string `dynamodbav:"name"`
	Email     string `dynamodbav:"email"`
	CreatedAt string `dynamodbav:"created_at"`
}

type emailItem struct {
	ID     string `dynamodbav:"id"`
	Kind   string `dynamodbav:"kind"`
	UserID string `dynamodbav:"user_id"`
}

func (u userItem) representation() User {
	return User{ID: u.ID, Name: u.Name, Email: u.Email, CreatedAt: u.CreatedAt}
}

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

func encodeID(b []byte) string { return "usr_" + strings.ToLower(idEncoding.EncodeToString(b[:16])) }

// UserID derives a user's ID from an idempotency scope ID: "usr_" and the first 128 bits of a domain-separated
// SHA-256, in lower-case base32 (26 characters).
func UserID(scopeID string) string {
	sum := sha256.Sum256([]byte("idemkit/user/v1\x00" + scopeID))
	return encodeID(sum[:])
}

var userIDPattern = regexp.MustCompile(`^usr_[a-z2-7]{26}$`)

// ValidUserID reports whether id has the shape of a user ID.
func ValidUserID(id string) bool { return userIDPattern.MatchString(id) }

// EmailKey is the partition key reserving a normalised e-mail address.
func EmailKey(normalisedEmail string) string { return EmailKeyPrefix + normalisedEmail }

func (s *Service) newID(ctx context.Context) (id string, derived bool, err error) {
	if s.opts.ScopeID != nil {
		if scope, ok := s.opts.ScopeID(ctx); ok && scope != "" {
			return UserID(scope), true, nil
		}
	}
	var b [16]byte
	if _, err := io.ReadFull(s.opts.Rand, b[:]); err != nil {
		return "", false, err
	}
	return encodeID(b[:]), false, nil
}

func (s *Service) create(ctx context.Context, req events.APIGatewayProxyRequest) events.APIGatewayProxyResponse {
	obj, p := httpapi.ReadObject(req.Body, req.IsBase64Encoded)
	if p != nil {
		return p.Response()
	}
	in, errs := ParseCreateRequest(obj)
	if errs != nil {
		return httpapi.Validation(errs).Response()
	}
	log := s.opts.Logger.With("request_id", req.RequestContext.RequestID)
	id, derived, err := s.newID(ctx)
	if err != nil {
		log.ErrorContext(ctx, "generate user id", "error", err.Error())
		return httpapi.Internal().Response()
	}
	log = log.With("user_id", id)

	u := userItem{ID: id, Kind: kindUser, Name: in.Name, Email: in.Email, CreatedAt: s.opts.Now().UTC().Format(time.RFC3339)}
	tx, err := s.registration(u)
	if err != nil {
		log.ErrorContext(ctx, "build registration", "error", err.Error())
		return httpapi.Internal().Response()
	}
	switch handed, err := s.handOver(ctx, tx); {
	case err != nil:
		log.ErrorContext(ctx, "hand over registration", "error", err.Error())
		return httpapi.Internal().Response() // not recorded: the engine then commits none of the writes
	case handed:
		// The engine commits the registration with the idempotency record, or learns from the cancellation
		// that the address is taken or the key was used before, and asks again; the answer is then ours below.
		log.InfoContext(ctx, "user registration handed to the idempotency transaction")
		return httpapi.Created(location(id), u.representation())
	}
	_, err = s.db.TransactWriteItems(ctx, tx)
	if err == nil {
		log.InfoContext(ctx, "user created")
		return httpapi.Created(location(id), u.representation())
	}
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) {
		return s.cancelled(ctx, log, tce, u, derived)
	}
	return s.storeFailure(ctx, log, "register user", err)
}

// handOver gives the registration's writes to the engine (Options.Effect) and reports whether it took them. The
// engine takes all of a handler's writes or none: it refuses only outside an idempotent execution or after it.
func (s *Service) handOver(ctx context.Context, tx *dynamodb.TransactWriteItemsInput) (bool, error) {
	if s.opts.Effect == nil {
		return false, nil
	}
	for i, w := range tx.TransactItems {
		if !s.opts.Effect(ctx, w) {
			if i > 0 {
				return false, errors.New("the engine took some of the registration's writes and refused the rest")
			}
			return false, nil
		}
	}
	return true, nil
}

// registration is the transaction that creates the user and reserves its e-mail address.
func (s *Service) registration(u userItem) (*dynamodb.TransactWriteItemsInput, error) {
	ua, err := attributevalue.MarshalMap(u)
	if err != nil {
		return nil, err
	}
	ea, err := attributevalue.MarshalMap(emailItem{ID: EmailKey(u.Email), Kind: kindEmail, UserID: u.ID})
	if err != nil {
		return nil, err
	}
	expr, err := expression.NewBuilder().WithCondition(expression.AttributeNotExists(expression.Name("id"))).Build()
	if err != nil {
		return nil, err
	}
	put := func(item map[string]types.AttributeValue) types.TransactWriteItem {
		return types.TransactWriteItem{Put: &types.Put{
			TableName:                aws.String(s.table),
			Item:                     item,
			ConditionExpression:      expr.Condition(),
			ExpressionAttributeNames: expr.Names(),
			// The old item comes back in the cancellation reason: the e-mail item names the user that owns the
			// address, the user item lets a retry be answered without another read.
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		}}
	}
	return &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{put(ua), put(ea)}}, nil
}

// Positions of the items in the registration transaction, as in its cancellation reasons.
const (
	txUser  = 0
	txEmail = 1
)

// cancelled decides what a cancelled registration means, from the cancellation reasons DynamoDB returns in
// the order of the transaction's items.
func (s *Service) cancelled(ctx context.Context, log *slog.Logger, tce *types.TransactionCanceledException, u userItem, derived bool) events.APIGatewayProxyResponse {
	reason := func(i int) (string, map[string]types.AttributeValue) {
		if i < len(tce.CancellationReasons) {
			r := tce.CancellationReasons[i]
			return aws.ToString(r.Code), r.Item
		}
		return "", nil
	}
	userCode, oldUser := reason(txUser)
	emailCode, oldEmail := reason(txEmail)

	if emailCode == "ConditionalCheckFailed" {
		owner, err := s.emailOwner(ctx, u.Email, oldEmail)
		if err != nil {
			return s.storeFailure(ctx, log, "read e-mail owner", err)
		}
		if derived && owner == u.ID {
			// This request's own user, written by an earlier run of the same request (same scope, same ID)
			// whose idempotency record is gone.
			return s.answerExisting(ctx, log, u, oldUser)
		}
		log.InfoContext(ctx, "e-mail address already registered")
		return emailTaken().Response()
	}
	if userCode == "ConditionalCheckFailed" {
		if derived {
			// The ID is this scope's, the address is free: the key was used before for another user.
			log.WarnContext(ctx, "idempotency key reused for a different user")
			return keyReused().Response()
		}
		// 128 random bits collided: vanishingly unlikely, and a retry draws a new ID.
		log.ErrorContext(ctx, "random user id collided")
		return httpapi.Unavailable(1).Response()
	}
	for _, r := range tce.CancellationReasons {
		switch aws.ToString(r.Code) {
		case "TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded":
			log.WarnContext(ctx, "registration contended", "reason", aws.ToString(r.Code))
			return httpapi.Unavailable(1).Response()
		}
	}
	if len(tce.CancellationReasons) == 0 {
		// No reasons: decide by reading the reservation.
		owner, err := s.emailOwner(ctx, u.Email, nil)
		if err != nil {
			return s.storeFailure(ctx, log, "read e-mail owner", err)
		}
		if owner != "" && owner != u.ID {
			return emailTaken().Response()
		}
		if owner == u.ID && derived {
			return s.answerExisting(ctx, log, u, nil)
		}
		return httpapi.Unavailable(1).Response()
	}
	log.ErrorContext(ctx, "registration cancelled", "error", tce.Error())
	return httpapi.Internal().Response()
}

// emailOwner returns the user ID holding the e-mail reservation, from the cancellation reason's old item or, when
// DynamoDB did not return it, from a consistent read. "" means no reservation.
func (s *Service) emailOwner(ctx context.Context, email string, old map[string]types.AttributeValue) (string, error) {
	if len(old) == 0 {
		var err error
		old, err = s.getItem(ctx, EmailKey(email))
		if err != nil {
			return "", err
		}
	}
	var e emailItem
	if err := attributevalue.UnmarshalMap(old, &e); err != nil {
		return "", err
	}
	return e.UserID, nil
}

// answerExisting answers a retry whose user already exists: 201 with it when the name matches (the e-mail
// matched already), else 422 because the key was reused with another body.
func (s *Service) answerExisting(ctx context.Context, log *slog.Logger, want userItem, old map[string]types.AttributeValue) events.APIGatewayProxyResponse {
	if len(old) == 0 {
		var err error
		old, err = s.getItem(ctx, want.ID)
		if err != nil {
			return s.storeFailure(ctx, log, "read user", err)
		}
	}
	var got userItem
	if err := attributevalue.UnmarshalMap(old, &got); err != nil || got.ID == "" {
		log.ErrorContext(ctx, "read back user failed")
		return httpapi.Unavailable(1).Response()
	}
	if got.Name != want.Name || got.Email != want.Email {
		log.WarnContext(ctx, "idempotency key reused for a different user")
		return keyReused().Response()
	}
	log.InfoContext(ctx, "user already exists; answered with it")
	return httpapi.Created(location(got.ID), got.representation())
}

func (s *Service) get(ctx context.Context, req events.APIGatewayProxyRequest) events.APIGatewayProxyResponse {
	id := req.PathParameters["id"]
	if !ValidUserID(id) {
		return httpapi.NotFound("No user has this id.").Response()
	}
	log := s.opts.Logger.With("user_id", id, "request_id", req.RequestContext.RequestID)
	av, err := s.getItem(ctx, id)
	if err != nil {
		return s.storeFailure(ctx, log, "read user", err)
	}
	var u userItem
	if len(av) > 0 {
		if err := attributevalue.UnmarshalMap(av, &u); err != nil {
			log.ErrorContext(ctx, "decode user", "error", err.Error())
			return httpapi.Internal().Response()
		}
	}
	if u.Kind != kindUser {
		return httpapi.NotFound("No user has the id " + id + ".").Response()
	}
	return httpapi.JSON(http.StatusOK, u.representation(), nil)
}

// getItem reads an item consistently (a user created a moment ago is found); nil means absent.
func (s *Service) getItem(ctx context.Context, id string) (map[string]types.AttributeValue, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.table),
		Key:            map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: id}},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, err
	}
	return out.Item, nil
}

func location(id string) string { return ResourceUsers + "/" + id }

func (s *Service) storeFailure(ctx context.Context, log *slog.Logger, op string, err error) events.APIGatewayProxyResponse {
	if awsenv.Transient(err) {
		log.WarnContext(ctx, op+" failed (transient)", "error", err.Error())
		return httpapi.Unavailable(1).Response()
	}
	log.ErrorContext(ctx, op+" failed", "error", err.Error())
	return httpapi.Internal().Response()
}

func emailTaken() httpapi.Problem {
	return httpapi.Problem{
		Type:   httpapi.TypeBase + "email-taken",
		Title:  "E-mail address already registered",
		Status: http.StatusConflict,
		Detail: "A user with this e-mail address (compared case-insensitively) already exists.",
	}
}

func keyReused() httpapi.Problem {
	return httpapi.Problem{
		Type:   httpapi.TypeBase + "idempotency-key-reused",
		Title:  "Idempotency-Key already used for another user",
		Status: http.StatusUnprocessableEntity,
		Detail: "A user with different details was already created with this Idempotency-Key. Use a new key for a new user.",
	}
}
