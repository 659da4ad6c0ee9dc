package scimserver

import (
	"errors"
	"fmt"

	"github.com/scimserver/scimserver/scimserver/patch"
	"github.com/scimserver/scimserver/storage"
)

// Code classifies a domain error; the HTTP adapter maps each code to one status.
type Code string

// Error codes.
const (
	Invalid      Code = "invalid"      // the request cannot be carried out as sent (400)
	Unauthorized Code = "unauthorized" // no valid credential (401)
	NotFound     Code = "not_found"    // no such resource for this caller (404)
	Conflict     Code = "conflict"     // the resource's state forbids it: uniqueness, anonymized (409)
	Precondition Code = "precondition" // the caller's expected version is stale (412)
	Busy         Code = "busy"         // the server has no room for the request now; retry (429)
	Canceled     Code = "canceled"     // the client went away before the answer was ready
	Gone         Code = "gone"         // a feed cursor the feed no longer resumes from (410)
	Unavailable  Code = "unavailable"  // the store cannot take the request now (503)
	Internal     Code = "internal"     // a fault of the server (500)
)

// Error is the one error type the domain returns. Type is the SCIM error type (RFC 7644
// §3.12: invalidValue, uniqueness, mutability, …) where one applies. Message is safe to show to
// the client and to log: it names attributes and kinds of resources, never a value, an id or a
// credential a client sent.
type Error struct {
	Code    Code
	Type    string
	Message string
}

func (e *Error) Error() string { return e.Message }

// Errorf builds an *Error.
func Errorf(code Code, scimType, format string, args ...any) *Error {
	return &Error{Code: code, Type: scimType, Message: fmt.Sprintf(format, args...)}
}

func invalid(scimType, message string) *Error {
	return &Error{Code: Invalid, Type: scimType, Message: message}
}

// ErrorOf returns err as a domain error: storage and PATCH errors become the domain error they
// mean; anything else is Internal.
func ErrorOf(err error) *Error {
	var de *Error
	if errors.As(err, &de) {
		return de
	}
	var ce *CursorGoneError
	if errors.As(err, &ce) {
		return &Error{Code: Gone, Message: ce.Message}
	}
	var pe *patch.Error
	if errors.As(err, &pe) {
		return &Error{Code: Invalid, Type: pe.ScimType, Message: pe.Detail}
	}
	var se *storage.Error
	if errors.As(err, &se) {
		switch se.Code {
		case storage.NotFound:
			return &Error{Code: NotFound, Message: se.Message}
		case storage.Conflict:
			return &Error{Code: Conflict, Type: "uniqueness", Message: se.Message}
		case storage.Invalid:
			return &Error{Code: Invalid, Type: "invalidValue", Message: se.Message}
		case storage.Unavailable:
			return &Error{Code: Unavailable, Message: "the data store cannot take this request right now; retry later"}
		}
	}
	return &Error{Code: Internal, Message: "internal error"}
}

// ErrorCode returns the code of err as the domain sees it.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	return ErrorOf(err).Code
}

// notFound names the kind of resource that was not found, never the id asked for.
func notFound(what string) *Error { return &Error{Code: NotFound, Message: what + " not found"} }

// found turns a storage NotFound into the domain's, naming what was looked for.
func found(err error, what string) error {
	if storage.ErrorCode(err) == storage.NotFound {
		return notFound(what)
	}
	return err
}
