package scimserver

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/scimserver/scimserver/storage"
)

// Webhooks push a tenant's change feed to URLs its operator configures: the same changes, in
// order, each signed (Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature). The
// domain keeps the webhooks with the tenant's data and states the rules — which targets are
// allowed, how a delivery is signed, and who delivers: a webhook is leased to one deliverer at
// a time, so that of several servers sharing the data exactly one delivers it, and the
// position delivered up to is stored, so that nothing is lost across restarts or while a
// receiver is down. Sending the requests is scimserver/webhook's.

// webhookCollection stores the webhooks of a tenant; the HMAC key is the record's secret.
var webhookCollection = &storage.Collection{Name: "webhooks"}

// Webhook trail operations (in the trail, not in the feed).
const (
	opWebhookCreate = "webhook-create"
	opWebhookDelete = "webhook-delete"
)

// Webhook is a webhook with its delivery state.
type Webhook struct {
	ID      string
	Tenant  string
	URL     string
	Created time.Time
	// Position is the cursor delivered up to: the next delivery is the first change after it.
	Position uint64
	// Delivered counts the changes delivered.
	Delivered     uint64
	LastAttemptAt *time.Time
	LastSuccessAt *time.Time
	NextAttemptAt *time.Time
	// Failures counts the failed attempts since the last success; LastError says why the last
	// one failed (a status, a network error; never a change's content).
	Failures  int
	LastError string
	// Holder is the deliverer holding the lease until LeaseUntil.
	Holder     string
	LeaseUntil *time.Time
}

// webhookDoc is a webhook as stored.
type webhookDoc struct {
	URL           string     `json:"url"`
	Position      uint64     `json:"position"`
	Delivered     uint64     `json:"delivered,omitempty"`
	LastAttemptAt *time.Time `json:"lastAttemptAt,omitempty"`
	LastSuccessAt *time.Time `json:"lastSuccessAt,omitempty"`
	NextAttemptAt *time.Time `json:"nextAttemptAt,omitempty"`
	Failures      int        `json:"failures,omitempty"`
	LastError     string     `json:"lastError,omitempty"`
	Holder        string     `json:"holder,omitempty"`
	LeaseUntil    *time.Time `json:"leaseUntil,omitempty"`
}

func webhookOf(tenant string, rec storage.Record) (Webhook, webhookDoc, error) {
	var d webhookDoc
	if err := json.Unmarshal(rec.Doc, &d); err != nil {
		return Webhook{}, d, err
	}
	return Webhook{ID: rec.ID, Tenant: tenant, URL: d.URL, Created: rec.Created, Position: d.Position, Delivered: d.Delivered,
		LastAttemptAt: d.LastAttemptAt, LastSuccessAt: d.LastSuccessAt, NextAttemptAt: d.NextAttemptAt, Failures: d.Failures,
		LastError: d.LastError, Holder: d.Holder, LeaseUntil: d.LeaseUntil}, d, nil
}

// WebhookSpec describes a webhook to create.
type WebhookSpec struct {
	URL string
	// Secret is the signing secret, "whsec_" and the base64 of 24 to 64 bytes; empty: one is
	// generated.
	Secret string
	// After is the cursor the deliveries start after; nil: now (the changes committed from
	// here on), 0: the beginning of the feed.
	After *uint64
}

const webhookSecretPrefix = "whsec_"

// webhookKey reads a signing secret into its HMAC key.
func webhookKey(secret string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, webhookSecretPrefix))
	if err != nil || !strings.HasPrefix(secret, webhookSecretPrefix) || len(key) < 24 || len(key) > 64 {
		return nil, invalid("invalidValue", `a webhook secret is "whsec_" followed by the base64 of 24 to 64 random bytes`)
	}
	return key, nil
}

// SignWebhook is a delivery's webhook-signature: "v1," and the base64 HMAC-SHA256, under the
// webhook's key, of its webhook-id, its webhook-timestamp (Unix seconds) and its body, joined
// by dots (the Standard Webhooks scheme).
func SignWebhook(key []byte, id string, at time.Time, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + strconv.FormatInt(at.Unix(), 10) + "."))
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// CheckWebhookURL is the rule for a webhook's target: an absolute http or https URL without
// credentials, whose host is not a private, loopback or otherwise non-public address unless the
// operator allows such targets (Options.WebhookPrivateTargets). Host names are checked again,
// address by address, when a deliverer connects (WebhookAddrAllowed).
func (s *Service) CheckWebhookURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil || len(raw) > 2048 || !u.IsAbs() || u.Opaque != "" || u.Hostname() == "":
		return invalid("invalidValue", "a webhook URL is an absolute http or https URL of at most 2048 characters")
	case u.Scheme != "https" && u.Scheme != "http":
		return invalid("invalidValue", "a webhook URL is http or https")
	case u.User != nil || u.Fragment != "":
		return invalid("invalidValue", "a webhook URL carries no credentials and no fragment")
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	ip, err := netip.ParseAddr(host)
	private := err == nil && !publicAddr(ip) || host == "localhost" || strings.HasSuffix(host, ".localhost")
	if private && !s.opts.WebhookPrivateTargets {
		return invalid("invalidValue", "a webhook URL must not point at a private, loopback or link-local address (allowed only when the server is started with --webhook-allow-private)")
	}
	return nil
}

// WebhookAddrAllowed reports whether a deliverer may connect to ip: the rule of
// CheckWebhookURL, applied to every address a host name resolves to when it is dialled.
func (s *Service) WebhookAddrAllowed(ip netip.Addr) bool {
	return s.opts.WebhookPrivateTargets || publicAddr(ip)
}

// nonPublic lists address ranges that are not on the public internet beyond those netip
// classifies: shared address space (often cloud metadata), reserved and documentation ranges,
// and the IPv6 prefixes that embed an IPv4 address.
var nonPublic = func() []netip.Prefix {
	var out []netip.Prefix
	for _, p := range []string{"0.0.0.0/8", "100.64.0.0/10", "192.0.0.0/24", "192.0.2.0/24", "198.18.0.0/15",
		"198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4", "64:ff9b::/96", "64:ff9b:1::/48", "100::/64",
		"2001::/32", "2001:db8::/32", "2002::/16"} {
		out = append(out, netip.MustParsePrefix(p))
	}
	return out
}()

func publicAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// CreateWebhook adds a webhook to a tenant and returns it with its signing secret (generated
// when the spec has none; shown only this once).
func (s *Service) CreateWebhook(ctx context.Context, actor Actor, tenant string, spec WebhookSpec) (Webhook, string, error) {
	if err := s.CheckWebhookURL(spec.URL); err != nil {
		return Webhook{}, "", err
	}
	secret := spec.Secret
	if secret == "" {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		secret = webhookSecretPrefix + base64.StdEncoding.EncodeToString(b)
	}
	key, err := webhookKey(secret)
	if err != nil {
		return Webhook{}, "", err
	}
	var out Webhook
	err = s.writeTenant(ctx, tenant, func(tx storage.Tx) error {
		head, err := headOf(tx)
		if err != nil {
			return err
		}
		d := webhookDoc{URL: spec.URL, Position: head}
		if spec.After != nil {
			if *spec.After > head {
				return invalid("invalidValue", "after is ahead of the feed: use a cursor the feed returned")
			}
			d.Position = *spec.After
		}
		raw, err := json.Marshal(d)
		if err != nil {
			return err
		}
		rec, err := tx.Insert(webhookCollection, storage.Record{ID: newTokenID(), Doc: raw, Secret: key})
		if err != nil {
			return err
		}
		if out, _, err = webhookOf(tenant, rec); err != nil {
			return err
		}
		return tx.Append(storage.Event{ActorID: actor.ID, ActorName: actor.Name, Operation: opWebhookCreate, ResourceType: "Webhook", ResourceID: rec.ID})
	})
	if err != nil {
		return Webhook{}, "", err
	}
	s.hooks.changed()
	if spec.Secret != "" {
		secret = "" // the operator's own: not echoed
	}
	return out, secret, nil
}

// writeTenant is write for operators' changes to a tenant's configuration: an unknown tenant
// is NotFound naming the tenant.
func (s *Service) writeTenant(ctx context.Context, tenant string, fn func(storage.Tx) error) error {
	return found(s.write(ctx, tenant, fn), "tenant")
}

// Webhooks lists a tenant's webhooks.
func (s *Service) Webhooks(ctx context.Context, tenant string) ([]Webhook, error) {
	var out []Webhook
	err := s.read(ctx, tenant, func(tx storage.Tx) error {
		out = out[:0]
		return tx.Scan(webhookCollection, storage.Position{}, func(rec storage.Record) (bool, error) {
			h, _, err := webhookOf(tenant, rec)
			out = append(out, h)
			return true, err
		})
	})
	return nonNil(out), found(err, "tenant")
}

// Webhook returns one webhook of a tenant.
func (s *Service) Webhook(ctx context.Context, tenant, id string) (Webhook, error) {
	var out Webhook
	err := s.read(ctx, tenant, func(tx storage.Tx) error {
		rec, err := tx.Get(webhookCollection, id)
		if err != nil {
			return err
		}
		out, _, err = webhookOf(tenant, rec)
		return err
	})
	return out, found(err, "webhook")
}

// DeleteWebhook removes a webhook; its deliveries stop.
func (s *Service) DeleteWebhook(ctx context.Context, actor Actor, tenant, id string) error {
	err := s.write(ctx, tenant, func(tx storage.Tx) error {
		if err := tx.Delete(webhookCollection, id); err != nil {
			return err
		}
		return tx.Append(storage.Event{ActorID: actor.ID, ActorName: actor.Name, Operation: opWebhookDelete, ResourceType: "Webhook", ResourceID: id})
	})
	if err == nil {
		s.hooks.changed()
	}
	return found(err, "webhook")
}

// ActiveWebhooks lists the webhooks of every enabled tenant: those a deliverer serves.
func (s *Service) ActiveWebhooks(ctx context.Context) ([]Webhook, error) {
	var out []Webhook
	err := s.store.ReadAdmin(ctx, func(a storage.AdminTx) error {
		out = out[:0]
		ts, err := a.Tenants()
		if err != nil {
			return err
		}
		for _, t := range ts {
			if t.Disabled {
				continue
			}
			tx, err := a.In(t.ID)
			if err != nil {
				return err
			}
			err = tx.Scan(webhookCollection, storage.Position{}, func(rec storage.Record) (bool, error) {
				h, _, err := webhookOf(t.ID, rec)
				out = append(out, h)
				return true, err
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// WebhooksChanged returns a channel closed when a webhook is created or deleted through this
// service: a deliverer looks again at once rather than at its next rescan.
func (s *Service) WebhooksChanged() <-chan struct{} { return s.hooks.watch() }

type hookSignal struct {
	mu sync.Mutex
	ch chan struct{}
}

func (h *hookSignal) watch() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ch == nil {
		h.ch = make(chan struct{})
	}
	return h.ch
}

func (h *hookSignal) changed() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ch != nil {
		close(h.ch)
		h.ch = nil
	}
}

// DeliveryReport is what a deliverer reports of its work since its last report.
type DeliveryReport struct {
	// Position is the cursor delivered up to; a webhook's position never moves back.
	Position  uint64
	Delivered int
	Attempted time.Time // zero: no attempt, and the failure state below stays as it was
	Succeeded time.Time // zero: no success
	// Failures and LastError are the state after the last attempt: 0 and "" after a success.
	Failures    int
	LastError   string
	NextAttempt time.Time // zero: none scheduled
}

// LeaseWebhook gives holder the webhook's lease for lease (0 releases it), after recording
// report (nil: nothing to report), and returns the webhook with its HMAC key. A lease another
// holder keeps is Conflict; a deleted webhook is NotFound.
func (s *Service) LeaseWebhook(ctx context.Context, tenant, id, holder string, lease time.Duration, report *DeliveryReport) (Webhook, []byte, error) {
	var out Webhook
	var key []byte
	err := s.write(ctx, tenant, func(tx storage.Tx) error {
		rec, err := tx.Get(webhookCollection, id)
		if err != nil {
			return err
		}
		_, d, err := webhookOf(tenant, rec)
		if err != nil {
			return err
		}
		now := tx.Now()
		if d.Holder != holder && d.LeaseUntil != nil && d.LeaseUntil.After(now) {
			return Errorf(Conflict, "", "another server delivers this webhook")
		}
		if r := report; r != nil {
			d.Position = max(d.Position, r.Position)
			d.Delivered += uint64(r.Delivered)
			if !r.Attempted.IsZero() {
				d.LastAttemptAt = timePtr(r.Attempted)
				d.Failures, d.LastError, d.NextAttemptAt = r.Failures, r.LastError, timePtr(r.NextAttempt)
			}
			if !r.Succeeded.IsZero() {
				d.LastSuccessAt = timePtr(r.Succeeded)
			}
		}
		until := now.Add(lease)
		d.Holder, d.LeaseUntil = holder, &until
		if rec.Doc, err = json.Marshal(d); err != nil {
			return err
		}
		if rec, err = tx.Update(webhookCollection, rec); err != nil {
			return err
		}
		out, _, err = webhookOf(tenant, rec)
		key = rec.Secret
		return err
	})
	return out, key, found(err, "webhook")
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}
