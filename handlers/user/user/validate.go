package user

import (
	"fmt"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/idemkit/idemkit/handlers/internal/httpapi"
)

// Limits of the request rules.
const (
	MaxNameLen  = 100
	MaxEmailLen = 254 // RFC 5321's limit on a forward path, less the angle brackets
)

// CreateRequest is a validated POST /users body.
type CreateRequest struct {
	Name  string // trimmed
	Email string // normalised: trimmed, lower-case
}

// ParseCreateRequest validates a POST /users body and returns the request or every field error.
func ParseCreateRequest(obj *httpapi.Object) (CreateRequest, []httpapi.FieldError) {
	var req CreateRequest
	if name, ok := obj.String("name", true); ok {
		name = strings.TrimSpace(name)
		n := utf8.RuneCountInString(name)
		switch {
		case n == 0:
			obj.Fail("name", "must not be empty")
		case n > MaxNameLen:
			obj.Fail("name", fmt.Sprintf("must be at most %d characters", MaxNameLen))
		case strings.IndexFunc(name, unicode.IsControl) >= 0:
			obj.Fail("name", "must not contain control characters (line breaks, tabs, ...)")
		case strings.ContainsRune(name, utf8.RuneError):
			obj.Fail("name", invalidUTF8)
		case httpapi.ContainsCardNumber(name):
			obj.Fail("name", httpapi.CardLikeMessage)
		default:
			req.Name = name
		}
	}
	if email, ok := obj.String("email", true); ok {
		norm, msg := NormalizeEmail(email)
		if msg == "" && httpapi.ContainsCardNumber(norm) {
			msg = httpapi.CardLikeMessage // an address is stored and returned like a name
		}
		if msg != "" {
			obj.Fail("email", msg)
		} else {
			req.Email = norm
		}
	}
	obj.Unknown()
	if errs := obj.Errors(); len(errs) > 0 {
		return CreateRequest{}, errs
	}
	return req, nil
}

// invalidUTF8 refuses text holding U+FFFD. encoding/json turns every byte that is not UTF-8 into that replacement
// character, so it is how a body in another encoding (Latin-1 "Caf\xe9") shows after decoding: accepting it
// would store text the client never sent.
const invalidUTF8 = "must be UTF-8 text: it contains bytes that are not UTF-8 (or U+FFFD, the character that replaces them)"

// NormalizeEmail validates an e-mail address and returns it trimmed and lower-cased, or a message saying why it
// is not acceptable. Only a bare address is accepted: "Alice <alice@example.com>" and comments are refused
// rather than silently reduced, so what is stored is what the client sent.
//
// Every rule applies to the lower-cased form, the one stored: lower-casing can lengthen a string (U+023A "Ⱥ",
// two bytes, becomes U+2C65 "ⱥ", three), so checking the client's spelling could store an address longer than
// MaxEmailLen, which would then not validate as itself.
func NormalizeEmail(s string) (normalised, problem string) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return "", "must not be empty"
	}
	if len(s) > MaxEmailLen {
		return "", fmt.Sprintf("must be at most %d characters", MaxEmailLen)
	}
	if strings.ContainsRune(s, utf8.RuneError) {
		return "", invalidUTF8
	}
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Name != "" || addr.Address != s {
		return "", "must be an e-mail address such as alice@example.com"
	}
	at := strings.LastIndexByte(s, '@')
	domain := s[at+1:]
	if !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") ||
		strings.Contains(domain, "..") || strings.ContainsAny(domain, "[]") {
		return "", "must have a domain name such as example.com after the @"
	}
	return s, ""
}
