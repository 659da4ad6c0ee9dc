package storage

import (
	"errors"
	"fmt"
)

// Code classifies a storage error; the HTTP edge maps each code to one response.
type Code string

// Error codes.
const (
	NotFound     Code = "not_found"
	Conflict     Code = "conflict"     // a uniqueness constraint would be violated
	Precondition Code = "precondition" // the caller's expected version is stale
	Invalid      Code = "invalid"      // the request refers to something that cannot be
	Unavailable  Code = "unavailable"  // the store cannot take writes (disk full, read-only, closed)
	Anonymized   Code = "anonymized"   // the user was anonymized and can no longer change
)

// Error is a storage failure with a code and a message safe to show to a client: it never holds
// attribute values, which may be personal data.
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string { return e.Message }

// Errorf builds an *Error.
func Errorf(code Code, format string, args ...any) error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err, or "" when err is not a storage error.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// Not-found errors name the kind of record, never the id asked for: a client that addresses a
// user by email address or name would otherwise see it echoed into answers and logs.
var (
	errUserNotFound   = &Error{Code: NotFound, Message: "user not found"}
	errGroupNotFound  = &Error{Code: NotFound, Message: "group not found"}
	errTenantNotFound = &Error{Code: NotFound, Message: "tenant not found"}
	errTokenNotFound  = &Error{Code: NotFound, Message: "token not found"}
)
