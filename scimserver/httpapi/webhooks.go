package httpapi

import (
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/scimserver/scimserver/scimserver"
)

// The admin API's webhooks (/api/v1/admin/tenants/{id}/webhooks): where a tenant's change feed
// is pushed, and how the delivery goes.

func (s *Server) webhookRoutes(r chi.Router) {
	r.Get("/", s.adminListWebhooks)
	r.Post("/", s.adminCreateWebhook)
	r.Get("/{hookId}", s.adminGetWebhook)
	r.Delete("/{hookId}", s.adminDeleteWebhook)
}

// adminWebhook is a webhook as the admin API shows it: never its secret, except in the answer
// that created it with a generated one.
type adminWebhook struct {
	ID      string    `json:"id"`
	URL     string    `json:"url"`
	Created time.Time `json:"created"`
	// Position is the cursor delivered up to; LatestCursor the feed's newest.
	Position      string     `json:"position"`
	LatestCursor  string     `json:"latestCursor"`
	State         string     `json:"state"`
	Delivered     uint64     `json:"delivered"`
	Failures      int        `json:"failures"`
	LastError     string     `json:"lastError,omitempty"`
	LastAttemptAt *time.Time `json:"lastAttemptAt,omitempty"`
	LastSuccessAt *time.Time `json:"lastSuccessAt,omitempty"`
	NextAttemptAt *time.Time `json:"nextAttemptAt,omitempty"`
	Deliverer     string     `json:"deliverer,omitempty"`
	LeaseUntil    *time.Time `json:"leaseUntil,omitempty"`
	Secret        string     `json:"secret,omitempty"`
}

// toAdminWebhook shows h against the feed's newest cursor: "failing" while attempts fail,
// "current" when everything is delivered, "behind" otherwise.
func toAdminWebhook(h scimserver.Webhook, latest uint64) adminWebhook {
	state := "behind"
	switch {
	case h.Failures > 0:
		state = "failing"
	case h.Position >= latest:
		state = "current"
	}
	return adminWebhook{ID: h.ID, URL: h.URL, Created: h.Created, Position: scimserver.FormatCursor(h.Position),
		LatestCursor: scimserver.FormatCursor(latest), State: state, Delivered: h.Delivered, Failures: h.Failures,
		LastError: h.LastError, LastAttemptAt: h.LastAttemptAt, LastSuccessAt: h.LastSuccessAt,
		NextAttemptAt: h.NextAttemptAt, Deliverer: h.Holder, LeaseUntil: h.LeaseUntil}
}

func (s *Server) adminListWebhooks(w http.ResponseWriter, r *http.Request) {
	tenant := pathParam(r, "id")
	hooks, err := s.svc.Webhooks(r.Context(), tenant)
	s.answerWebhooks(w, r, tenant, hooks, err, func(out []adminWebhook) any { return map[string]any{"webhooks": out} })
}

func (s *Server) adminGetWebhook(w http.ResponseWriter, r *http.Request) {
	tenant := pathParam(r, "id")
	h, err := s.svc.Webhook(r.Context(), tenant, pathParam(r, "hookId"))
	s.answerWebhooks(w, r, tenant, []scimserver.Webhook{h}, err, func(out []adminWebhook) any { return out[0] })
}

// answerWebhooks shows hooks against the tenant's newest cursor, in the shape the request
// answers with, or the error that came instead.
func (s *Server) answerWebhooks(w http.ResponseWriter, r *http.Request, tenant string, hooks []scimserver.Webhook, err error,
	shape func([]adminWebhook) any) {
	var latest uint64
	if err == nil {
		latest, err = s.svc.Head(r.Context(), tenant)
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	out := make([]adminWebhook, 0, len(hooks))
	for _, h := range hooks {
		out = append(out, toAdminWebhook(h, latest))
	}
	writeJSON(w, http.StatusOK, shape(out))
}

// adminCreateWebhook takes {"url", "secret" (optional), "after" (optional cursor: deliveries
// start after it; without, at the changes from now on)}.
func (s *Server) adminCreateWebhook(w http.ResponseWriter, r *http.Request) {
	m, err := decodeObject(body(r))
	if err != nil {
		writeError(w, r, err)
		return
	}
	var spec scimserver.WebhookSpec
	var after string
	for name, dst := range map[string]*string{"url": &spec.URL, "secret": &spec.Secret, "after": &after} {
		if *dst, err = stringField(m, name); err != nil {
			writeError(w, r, err)
			return
		}
	}
	if after != "" {
		n, err := scimserver.ParseCursor(after)
		if err != nil {
			writeError(w, r, err)
			return
		}
		spec.After = &n
	}
	tenant := pathParam(r, "id")
	h, secret, err := s.svc.CreateWebhook(r.Context(), actorOf(r), tenant, spec)
	if err != nil {
		writeError(w, r, err)
		return
	}
	out := toAdminWebhook(h, h.Position)
	out.Secret = secret
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, out)
}

func (s *Server) adminDeleteWebhook(w http.ResponseWriter, r *http.Request) {
	if err := s.svc.DeleteWebhook(r.Context(), actorOf(r), pathParam(r, "id"), pathParam(r, "hookId")); err != nil {
		writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
