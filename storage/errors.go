package storage

import (
	"errors"
	"fmt"
)

// Code classifies a storage error; the domain maps each code to one of its own errors.
type Code string

// Error codes every engine returns.
const (
	NotFound    Code = "not_found"
	Conflict    Code = "conflict"    // a uniqueness constraint would be violated
	Invalid     Code = "invalid"     // the operation cannot be done with these arguments
	Unavailable Code = "unavailable" // the store cannot take the request (disk full, read-only, closed, unreachable)
)

// Error is a storage failure with a code and a message safe to show to a client: it never holds
// an id, a key or any other value, which may be personal data.
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
