package scimserver

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/scimserver/scimserver/schemas"
	"github.com/scimserver/scimserver/scimserver/patch"
	"github.com/scimserver/scimserver/storage"
)

// scimError is a SCIM error response (RFC 7644 §3.12). Detail never carries attribute values or
// credentials: it is logged and shown to whoever sent the request.
type scimError struct {
	Status   int
	ScimType string
	Detail   string
}

func (e *scimError) Error() string { return e.Detail }

func errorf(status int, scimType, detail string) *scimError {
	return &scimError{Status: status, ScimType: scimType, Detail: detail}
}

func badRequest(scimType, detail string) *scimError {
	return errorf(http.StatusBadRequest, scimType, detail)
}

// toSCIM maps any error to the one SCIM error it means. This is the only place storage and
// parser errors become HTTP statuses.
func toSCIM(err error) *scimError {
	var se *scimError
	if errors.As(err, &se) {
		return se
	}
	var pe *patch.Error
	if errors.As(err, &pe) {
		return errorf(pe.Status, pe.ScimType, pe.Detail)
	}
	var ste *storage.Error
	if errors.As(err, &ste) {
		switch ste.Code {
		case storage.NotFound:
			return errorf(http.StatusNotFound, "", ste.Message)
		case storage.Conflict:
			return errorf(http.StatusConflict, "uniqueness", ste.Message)
		case storage.Anonymized:
			return errorf(http.StatusConflict, "mutability", ste.Message)
		case storage.Precondition:
			return errorf(http.StatusPreconditionFailed, "", ste.Message)
		case storage.Invalid:
			return errorf(http.StatusBadRequest, "invalidValue", ste.Message)
		case storage.Unavailable:
			return errorf(http.StatusServiceUnavailable, "", "the data store cannot take this request right now; retry later")
		}
	}
	return errorf(http.StatusInternalServerError, "", "internal error")
}

// writeError answers with a SCIM error body. 5xx details are replaced by the request id so that
// no internal detail leaks while support can still find the log line.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := toSCIM(err)
	setErr(r, err)
	detail := e.Detail
	if e.Status >= 500 {
		detail += " (request id " + requestID(r) + ")"
	}
	body := map[string]any{
		"schemas": []string{schemas.ErrorURN},
		"status":  strconv.Itoa(e.Status),
		"detail":  detail,
	}
	if e.ScimType != "" {
		body["scimType"] = e.ScimType
	}
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="scimserver"`)
	}
	if e.Status == http.StatusTooManyRequests && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, e.Status, body)
}

// writeJSON writes v as application/scim+json.
func writeJSON(w http.ResponseWriter, status int, v any) {
	raw, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		raw = []byte(`{"schemas":["` + schemas.ErrorURN + `"],"status":"500","detail":"internal error"}`)
	}
	writeRaw(w, status, raw)
}

// writeRaw writes an already encoded JSON body.
func writeRaw(w http.ResponseWriter, status int, raw []byte) {
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/scim+json; charset=utf-8")
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(raw)))
	w.WriteHeader(status)
	_, _ = w.Write(raw)
}
