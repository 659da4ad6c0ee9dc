// Package scimserver is the SCIM domain: resource kinds as data (their schemas, the collections
// and indexes their records are stored in, how they are normalised, rendered and projected),
// filters and query planning, the lifecycle rules of audited users, anonymization, the audit
// trail's naming, tenants and tokens — and the Service whose methods carry them out, each in one
// storage transaction. It knows nothing of HTTP (scimserver/httpapi adapts it) nor of any
// storage engine (it speaks the storage contract).
package scimserver

import (
	"context"
	"time"

	"github.com/scimserver/scimserver/storage"
)

// Options configure a Service.
type Options struct {
	// Now is the clock for what the service decides by time (token expiry); nil means
	// time.Now.
	Now func() time.Time
	// ErasureWait bounds how long an anonymization waits for the storage that may hold the
	// erased values to be cleared before it answers (the clearing goes on after); 0 means 2 s.
	ErasureWait time.Duration
	// ScanTimeout bounds a listing that no index serves (a scan or a sort), and its wait for a
	// slot; 0 means 5 s.
	ScanTimeout time.Duration
	// MaxScans is how many such listings may run at once; 0 means half the CPUs (at least one).
	MaxScans int
	// FeedRetention, when set, is how far back the change feed serves: a cursor whose next
	// change is older is refused (*CursorGoneError), and its consumer must resync. The trail
	// itself is kept for ever.
	FeedRetention time.Duration
	// WebhookPrivateTargets allows webhooks to private, loopback and link-local addresses
	// (CheckWebhookURL); off, only public addresses are delivered to.
	WebhookPrivateTargets bool
	// SharedStore says that other processes write to the store too (servers sharing one
	// database): live tokens are then read from the store on every request rather than
	// remembered, since a revocation through another process would not reach this one's memory.
	SharedStore bool
}

// Service carries out every operation on a store's data.
type Service struct {
	store     storage.Store
	opts      Options
	users     *Kind
	groups    *Kind
	kinds     []*Kind
	pages     pageCache
	scans     scanSlots
	scanCount scanCounters
	auth      authCache
	hooks     hookSignal
	uses      tokenUses
}

// New returns a service over store, which must have been opened with Collections().
func New(store storage.Store, opts Options) *Service {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ErasureWait <= 0 {
		opts.ErasureWait = 2 * time.Second
	}
	if opts.ScanTimeout <= 0 {
		opts.ScanTimeout = 5 * time.Second
	}
	if opts.MaxScans <= 0 {
		opts.MaxScans = defaultMaxScans()
	}
	s := &Service{store: store, opts: opts, users: Users(), groups: Groups(), scans: make(scanSlots, opts.MaxScans)}
	s.kinds = []*Kind{s.users, s.groups}
	return s
}

// Users and Groups are the service's resource kinds; Kinds lists them in the order a root query
// answers them.
func (s *Service) Users() *Kind   { return s.users }
func (s *Service) Groups() *Kind  { return s.groups }
func (s *Service) Kinds() []*Kind { return s.kinds }

// Store is the storage engine the service runs on.
func (s *Service) Store() storage.Store { return s.store }

// kindNamed returns the kind a member's type names.
func (s *Service) kindNamed(name string) *Kind {
	for _, k := range s.kinds {
		if k.Name == name {
			return k
		}
	}
	return nil
}

// Actor is who performs a write, as the audit trail records it.
type Actor struct {
	ID   string
	Name string
}

// read runs fn in a read transaction of tenant, with domain errors.
func (s *Service) read(ctx context.Context, tenant string, fn func(storage.Tx) error) error {
	return s.store.Read(ctx, tenant, fn)
}

// write runs fn in a write transaction of tenant: fn may run more than once.
func (s *Service) write(ctx context.Context, tenant string, fn func(storage.Tx) error) error {
	return s.store.Write(ctx, tenant, fn)
}
