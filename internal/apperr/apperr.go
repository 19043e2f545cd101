// Package apperr is shaobing's one application error type. Every layer returns
// *Error (or wraps one) for failures a user can act on; anything else is an
// internal error: users see "internal error", the log sees the cause.
package apperr

import (
	"errors"
	"fmt"
	"net/http"
)

// Code classifies an error; each code maps to one HTTP status.
type Code string

// The codes. Their strings appear in problem documents ("type" suffix) and are a contract.
const (
	BadRequest   Code = "bad_request"       // malformed request (JSON syntax, unknown field)
	Invalid      Code = "invalid"           // well-formed but invalid values; see Fields
	Unauthorized Code = "unauthorized"      // no or bad credentials
	Forbidden    Code = "forbidden"         // authenticated but not allowed (never used to hide scope: that is NotFound)
	NotFound     Code = "not_found"         // missing, or out of the caller's scope
	Conflict     Code = "conflict"          // state or idempotency conflict
	TooLarge     Code = "too_large"         // request body over the limit
	TooMany      Code = "too_many_requests" // rate limited or locked out; retry later
	Unavailable  Code = "unavailable"       // overloaded or not ready; retry later
	Internal     Code = "internal"          // a bug or an infrastructure failure
)

// Status returns the HTTP status for a code.
func (c Code) Status() int {
	switch c {
	case BadRequest:
		return http.StatusBadRequest
	case Invalid:
		return http.StatusUnprocessableEntity
	case Unauthorized:
		return http.StatusUnauthorized
	case Forbidden:
		return http.StatusForbidden
	case NotFound:
		return http.StatusNotFound
	case Conflict:
		return http.StatusConflict
	case TooLarge:
		return http.StatusRequestEntityTooLarge
	case TooMany:
		return http.StatusTooManyRequests
	case Unavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// FieldError says which input field is wrong and why.
// Field is the JSON name (dotted for nested: "person.id_number"); Code is a stable
// machine-readable reason that is also the translation key suffix ("error.<code>");
// Message is the English text, used when no translation exists.
type FieldError struct {
	Field   string `json:"field"`
	Code    string `json:"code"`
	Message string `json:"detail"`
	// Args fill %v verbs in the translated message.
	Args []any `json:"-"`
}

// Error is the application error.
type Error struct {
	Code    Code
	Message string // safe to show a user (English; translated by key "error.<Code>" when Message is empty)
	Fields  []FieldError
	Err     error // cause, for logs only
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = string(e.Code)
	}
	for _, f := range e.Fields {
		msg += fmt.Sprintf("; %s: %s", f.Field, f.Message)
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// New returns an error with a code and a user-safe message.
func New(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an error with a code and message that keeps err as its cause.
func Wrap(err error, code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: err}
}

// NotFoundf is a NotFound error for the named kind of object ("person", "tube").
func NotFoundf(format string, args ...any) *Error {
	return New(NotFound, format, args...)
}

// Field returns an Invalid error naming one field.
func Field(field, code, message string, args ...any) *Error {
	return &Error{Code: Invalid, Message: "invalid input", Fields: []FieldError{{Field: field, Code: code, Message: fmt.Sprintf(message, args...), Args: args}}}
}

// CodeOf returns the code of the first *Error in err's chain, or Internal.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// As returns the first *Error in err's chain, or nil.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// Is reports whether err carries the given code.
func Is(err error, code Code) bool { return err != nil && CodeOf(err) == code }

// Problems collects field errors while validating a whole input, so a user
// sees every bad field at once.
type Problems []FieldError

// Add records a bad field.
func (p *Problems) Add(field, code, message string, args ...any) {
	*p = append(*p, FieldError{Field: field, Code: code, Message: fmt.Sprintf(message, args...), Args: args})
}

// AddErr records err under field: an Invalid *Error's field errors are re-rooted
// under field (prefixing their own field names); any other error is added as-is.
func (p *Problems) AddErr(field string, err error) {
	if err == nil {
		return
	}
	if e := As(err); e != nil && e.Code == Invalid && len(e.Fields) > 0 {
		for _, f := range e.Fields {
			name := field
			if f.Field != "" && f.Field != field {
				if field == "" {
					name = f.Field
				} else {
					name = field + "." + f.Field
				}
			}
			*p = append(*p, FieldError{Field: name, Code: f.Code, Message: f.Message, Args: f.Args})
		}
		return
	}
	*p = append(*p, FieldError{Field: field, Code: "invalid", Message: err.Error()})
}

// Has reports whether a problem was recorded for field.
func (p Problems) Has(field string) bool {
	for _, f := range p {
		if f.Field == field {
			return true
		}
	}
	return false
}

// Err returns an Invalid *Error holding the problems, or nil when there are none.
func (p Problems) Err() error {
	if len(p) == 0 {
		return nil
	}
	return &Error{Code: Invalid, Message: "invalid input", Fields: []FieldError(p)}
}
