package httpapi

import (
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"strconv"

	"github.com/scimserver/scimserver/schemas"
	"github.com/scimserver/scimserver/scimserver"
)

// statusClientGone is what the log and the metrics record for an answer nobody received (the
// client went away, or the write timeout cut it): the convention of common proxies.
const statusClientGone = 499

// httpError is an error only HTTP knows: an unknown route, a method, a media type, a size
// limit, throttling.
type httpError struct {
	Status   int
	ScimType string
	Detail   string
}

func (e *httpError) Error() string { return e.Detail }

func errorf(status int, scimType, detail string) *httpError {
	return &httpError{Status: status, ScimType: scimType, Detail: detail}
}

func badRequest(scimType, detail string) *httpError {
	return errorf(http.StatusBadRequest, scimType, detail)
}

// statusOf is the one mapping of domain error codes to HTTP statuses.
var statusOf = map[scimserver.Code]int{
	scimserver.Invalid:      http.StatusBadRequest,
	scimserver.Unauthorized: http.StatusUnauthorized,
	scimserver.NotFound:     http.StatusNotFound,
	scimserver.Conflict:     http.StatusConflict,
	scimserver.Precondition: http.StatusPreconditionFailed,
	scimserver.Busy:         http.StatusTooManyRequests,
	scimserver.Canceled:     statusClientGone,
	scimserver.Gone:         http.StatusGone,
	scimserver.Unavailable:  http.StatusServiceUnavailable,
	scimserver.Internal:     http.StatusInternalServerError,
}

// toSCIM maps any error to the one SCIM error it means. This is the only place errors become
// HTTP statuses.
func toSCIM(err error) *httpError {
	var he *httpError
	if errors.As(err, &he) {
		return he
	}
	de := scimserver.ErrorOf(err)
	status, ok := statusOf[de.Code]
	if !ok {
		status = http.StatusInternalServerError
	}
	return &httpError{Status: status, ScimType: de.Type, Detail: de.Message}
}

// writeError answers with a SCIM error body. 5xx details gain the request id so that support can
// find the log line.
func writeError(w http.ResponseWriter, r *http.Request, err error) { writeErrorWith(w, r, err, nil) }

// writeErrorWith answers with a SCIM error body that carries extra members beside the standard
// ones (what a client needs in order to recover).
func writeErrorWith(w http.ResponseWriter, r *http.Request, err error, extra map[string]any) {
	e := toSCIM(err)
	setErr(r, err)
	detail := e.Detail
	if e.Status >= 500 {
		detail += " (request id " + requestID(r) + ")"
	}
	body := map[string]any{}
	maps.Copy(body, extra)
	body["schemas"], body["status"], body["detail"] = []string{schemas.ErrorURN}, strconv.Itoa(e.Status), detail
	if e.ScimType != "" {
		body["scimType"] = e.ScimType
	}
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="scimserver"`)
	}
	if e.Status == http.StatusTooManyRequests && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", "1")
	}
	// The store cannot take requests now (a disk full, a database unreachable or failing over):
	// clients back off a few seconds rather than retry at once.
	if e.Status == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", "5")
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
