// Package webhook delivers the change feed to the webhooks tenants' operators configure
// (scimserver/webhooks.go): each change is POSTed as the JSON the feed serves, one at a time and
// in order, signed as Standard Webhooks sign (webhook-id, webhook-timestamp,
// webhook-signature), and retried with capped exponential backoff until the receiver answers
// 2xx. The position delivered up to is stored with the webhook, so a restart or a receiver down
// for hours loses nothing; a receiver may see a change twice (after a crash between a delivery
// and the report of it) and deduplicates by webhook-id.
//
// Outbound requests only go where an operator pointed them, and further safeguards apply:
// redirects are not followed (a 3xx is a failure), no proxy from the environment is used, and
// every address a host name resolves to is checked when dialled, so private, loopback and
// link-local targets are refused unless the server allows them (--webhook-allow-private).
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/scimserver/scimserver/scimserver"
)

// Options tune a Deliverer; zero values take the defaults.
type Options struct {
	// Holder names this deliverer in webhook leases: unique among the servers sharing the
	// data, and best stable across restarts of one (a restarted holder takes its lease back at
	// once; another waits for it to expire). Default: the host name.
	Holder string
	// MinBackoff and MaxBackoff bound the wait before retrying a failed delivery, which doubles
	// from the one to the other (1s, 1m).
	MinBackoff, MaxBackoff time.Duration
	// Timeout bounds one delivery attempt (10s).
	Timeout time.Duration
	// Rescan is how often the webhooks are listed again, for those created or deleted by
	// another server (10s).
	Rescan time.Duration
	// BatchSize bounds the changes read at once (100).
	BatchSize int
	Logger    zerolog.Logger
}

// Deliverer delivers every active webhook of a service's data.
type Deliverer struct {
	svc    *scimserver.Service
	opts   Options
	log    zerolog.Logger
	client *http.Client
	lease  time.Duration
}

// New returns a deliverer for svc's webhooks; Run starts it.
func New(svc *scimserver.Service, opts Options) *Deliverer {
	if opts.Holder == "" {
		opts.Holder, _ = os.Hostname()
	}
	opts.MinBackoff = orDefault(opts.MinBackoff, time.Second)
	opts.MaxBackoff = max(orDefault(opts.MaxBackoff, time.Minute), opts.MinBackoff)
	opts.Timeout = orDefault(opts.Timeout, 10*time.Second)
	opts.Rescan = orDefault(opts.Rescan, 10*time.Second)
	if opts.BatchSize <= 0 {
		opts.BatchSize = 100
	}
	d := &Deliverer{svc: svc, opts: opts, log: opts.Logger,
		// Held through the longest backoff and one attempt, renewed at every report.
		lease: opts.MaxBackoff + 2*opts.Timeout + 30*time.Second}
	dialer := &net.Dialer{Timeout: opts.Timeout, Control: d.checkDial}
	d.client = &http.Client{
		Transport: &http.Transport{
			Proxy:                 nil, // an environment's proxy would connect where the check cannot see
			DialContext:           dialer.DialContext,
			TLSHandshakeTimeout:   opts.Timeout,
			ResponseHeaderTimeout: opts.Timeout,
			MaxIdleConnsPerHost:   2,
			IdleConnTimeout:       90 * time.Second,
			ForceAttemptHTTP2:     true,
		},
		Timeout: opts.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // a redirect is an answer, and not a 2xx
		},
	}
	return d
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

var errBlocked = errors.New("the address is private, loopback or link-local, and the server does not deliver there")

// checkDial refuses, at the moment of connecting, an address the webhook rule does not allow:
// a host name that resolves to a private address (or is made to, later) is caught here.
func (d *Deliverer) checkDial(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil || !d.svc.WebhookAddrAllowed(ap.Addr()) {
		return errBlocked
	}
	return nil
}

// Run delivers until ctx ends: one worker per active webhook, started and stopped as webhooks
// come and go. Each worker releases its lease when it stops.
func (d *Deliverer) Run(ctx context.Context) {
	type worker struct {
		cancel context.CancelFunc
		done   chan struct{}
	}
	workers := map[string]*worker{}
	defer func() {
		for _, w := range workers {
			w.cancel()
			<-w.done
		}
	}()
	for {
		changed := d.svc.WebhooksChanged()
		hooks, err := d.svc.ActiveWebhooks(ctx)
		if err != nil && ctx.Err() == nil {
			d.log.Warn().Err(err).Msg("webhooks: listing failed")
		}
		if err == nil {
			live := map[string]bool{}
			for _, h := range hooks {
				k := h.Tenant + "/" + h.ID
				live[k] = true
				if workers[k] == nil {
					wctx, cancel := context.WithCancel(ctx)
					w := &worker{cancel: cancel, done: make(chan struct{})}
					workers[k] = w
					go func() { defer close(w.done); d.deliver(wctx, h.Tenant, h.ID) }()
				}
			}
			for k, w := range workers {
				select {
				case <-w.done: // it stopped by itself (deleted): start again if it is back
					w.cancel()
					delete(workers, k)
					continue
				default:
				}
				if !live[k] {
					w.cancel()
					<-w.done
					delete(workers, k)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-time.After(d.opts.Rescan):
		}
	}
}

// deliver is one webhook's worker: lease it, read the feed from its position, send each change
// until the receiver takes it, and report the progress with every renewal of the lease.
func (d *Deliverer) deliver(ctx context.Context, tenant, id string) {
	log := d.log.With().Str("tenant", tenant).Str("webhook", id).Logger()
	var report *scimserver.DeliveryReport // progress not yet stored
	defer func() {
		// Release the lease, storing what was delivered since the last report.
		rctx, cancel := context.WithTimeout(context.Background(), d.opts.Timeout)
		defer cancel()
		_, _, _ = d.svc.LeaseWebhook(rctx, tenant, id, d.opts.Holder, 0, report)
	}()
	failures := 0
	fail := func(err error) {
		failures++
		wait := d.backoff(failures)
		now := time.Now()
		report.Attempted, report.Failures, report.LastError, report.NextAttempt = now, failures, err.Error(), now.Add(wait)
		log.Info().Int("failures", failures).Str("error", err.Error()).Msg("webhook: delivery failed")
		if _, _, err := d.svc.LeaseWebhook(ctx, tenant, id, d.opts.Holder, d.lease, report); err == nil {
			report = nil
		}
		sleep(ctx, wait)
	}
	for ctx.Err() == nil {
		hook, key, err := d.svc.LeaseWebhook(ctx, tenant, id, d.opts.Holder, d.lease, report)
		switch code := scimserver.ErrorCode(err); {
		case code == scimserver.NotFound:
			report = nil
			return
		case code == scimserver.Conflict: // another server delivers it
			// Ask again as often as the webhooks are listed (at most every half lease): a lease
			// released by a server that stopped is then taken over within Rescan.
			report = nil
			sleep(ctx, min(d.opts.Rescan, d.lease/2))
			continue
		case err != nil:
			if ctx.Err() == nil {
				log.Warn().Err(err).Msg("webhook: lease failed")
				sleep(ctx, d.opts.MinBackoff)
			}
			continue
		}
		report = &scimserver.DeliveryReport{Position: hook.Position}
		page, err := d.svc.WaitChanges(ctx, tenant, hook.Position, d.opts.BatchSize, d.lease/3)
		if err != nil {
			if ctx.Err() == nil {
				fail(errors.New(scimserver.ErrorOf(err).Message))
			}
			continue
		}
		if d.sendAll(ctx, hook, key, page.Changes, report, &failures, fail) {
			report.Position = max(report.Position, page.Next) // past events the feed leaves out
		}
	}
}

// sendAll sends changes in order into report, storing the progress every second of a long
// batch; it reports whether all were taken (after a failure, fail has reported and waited).
func (d *Deliverer) sendAll(ctx context.Context, hook scimserver.Webhook, key []byte, changes []scimserver.Change,
	report *scimserver.DeliveryReport, failures *int, fail func(error)) bool {
	stored := time.Now()
	for _, c := range changes {
		if err := d.send(ctx, hook, key, c); err != nil {
			if ctx.Err() == nil {
				fail(err)
			}
			return false
		}
		*failures = 0
		now := time.Now()
		report.Position, report.Delivered, report.Attempted, report.Succeeded = c.Seq(), report.Delivered+1, now, now
		report.Failures, report.LastError, report.NextAttempt = 0, "", time.Time{}
		if now.Sub(stored) > time.Second {
			if _, _, err := d.svc.LeaseWebhook(ctx, hook.Tenant, hook.ID, d.opts.Holder, d.lease, report); err != nil {
				return false // the next lease retries the report, or finds the webhook gone
			}
			*report, stored = scimserver.DeliveryReport{Position: c.Seq()}, now
		}
	}
	return true
}

// backoff is the wait after the n-th failure in a row: doubling from MinBackoff, capped at
// MaxBackoff, with a quarter of jitter so that many webhooks do not retry in step.
func (d *Deliverer) backoff(n int) time.Duration {
	b := d.opts.MinBackoff << min(n-1, 30)
	if b <= 0 || b > d.opts.MaxBackoff {
		b = d.opts.MaxBackoff
	}
	return b - time.Duration(rand.Int64N(int64(b)/4+1))
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// send POSTs one change; nil means the receiver answered 2xx.
func (d *Deliverer) send(ctx context.Context, hook scimserver.Webhook, key []byte, c scimserver.Change) error {
	body, err := json.Marshal(c)
	if err != nil {
		return err
	}
	msgID := hook.ID + "-" + c.Cursor // the same on every retry: what receivers deduplicate by
	now := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hook.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "scimserver-webhook")
	req.Header.Set("webhook-id", msgID)
	req.Header.Set("webhook-timestamp", fmt.Sprint(now.Unix()))
	req.Header.Set("webhook-signature", scimserver.SignWebhook(key, msgID, now, body))
	res, err := d.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, which may carry a credential in its query
		}
		return err
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("the receiver answered %d", res.StatusCode)
	}
	return nil
}
