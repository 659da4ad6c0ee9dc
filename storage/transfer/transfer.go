// Package transfer copies everything one store holds into another, whatever their engines:
// tenants, tokens (their hashes, so existing tokens keep working), every collection's records
// with their versions and times, memberships, audit facts, campaign participations and the whole
// audit trail with its numbers and times. It works in batches, one transaction each, and can be
// run again after an interruption: records and memberships are put again, the trail resumes
// after the last event the destination holds.
package transfer

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/scimserver/scimserver/storage"
)

// Options tune a copy.
type Options struct {
	// Collections are the collections the domain declares; each is copied.
	Collections []*storage.Collection
	// Batch is the number of records or events per transaction; 0 means 1000.
	Batch int
	// Progress, when set, is told after each batch how far a tenant's copy of a collection (or of
	// "trail") has come.
	Progress func(tenant, what string, done, total int)
	// Samples is the number of records per collection whose documents Verify compares; 0 means
	// 1000.
	Samples int
}

func (o *Options) batch() int {
	if o.Batch <= 0 {
		return 1000
	}
	return o.Batch
}

func (o *Options) progress(tenant, what string, done, total int) {
	if o.Progress != nil {
		o.Progress(tenant, what, done, total)
	}
}

// Copy copies from into to. The destination must implement storage.Importer. Neither store may
// be written by anything else meanwhile.
func Copy(ctx context.Context, from, to storage.Store, opts Options) error {
	imp, ok := to.(storage.Importer)
	if !ok {
		return fmt.Errorf("the destination engine cannot import data")
	}
	tenants, err := copyAdmin(ctx, from, to)
	if err != nil {
		return err
	}
	for _, tenant := range tenants {
		for _, c := range opts.Collections {
			if err := copyRecords(ctx, from, imp, tenant, c, &opts); err != nil {
				return fmt.Errorf("tenant %s, %s: %w", tenant, c.Name, err)
			}
		}
		if err := copyTrail(ctx, from, imp, tenant, &opts); err != nil {
			return fmt.Errorf("tenant %s, audit trail: %w", tenant, err)
		}
	}
	return nil
}

// copyAdmin copies tenants and tokens in one transaction, and returns the tenant ids.
func copyAdmin(ctx context.Context, from, to storage.Store) ([]string, error) {
	var tenants []storage.Tenant
	var tokens []storage.Token
	err := from.ReadAdmin(ctx, func(a storage.AdminTx) error {
		var err error
		if tenants, err = a.Tenants(); err != nil {
			return err
		}
		tokens, err = a.Tokens("")
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reading tenants and tokens: %w", err)
	}
	err = to.WriteAdmin(ctx, func(a storage.AdminTx) error {
		for _, t := range tenants {
			if err := a.PutTenant(t); err != nil {
				return err
			}
		}
		for _, t := range tokens {
			if err := a.PutToken(t); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("writing tenants and tokens: %w", err)
	}
	ids := make([]string, len(tenants))
	for i, t := range tenants {
		ids[i] = t.ID
	}
	return ids, nil
}

// item is one record with everything kept beside it.
type item struct {
	rec       storage.Record
	members   []storage.Member
	facts     storage.Facts
	campaigns []storage.Participation
}

// copyRecords copies a collection batch by batch, in id order.
func copyRecords(ctx context.Context, from storage.Store, to storage.Importer, tenant string, c *storage.Collection, opts *Options) error {
	total, done, after := 0, 0, ""
	for {
		if err := ctx.Err(); err != nil {
			return err // interrupted: a later run resumes
		}
		var batch []item
		err := from.Read(ctx, tenant, func(tx storage.Tx) error {
			total, batch = tx.Count(c), batch[:0]
			return tx.Scan(c, storage.Position{From: after}, func(r storage.Record) (bool, error) {
				if r.ID == after {
					return true, nil
				}
				it, err := readItem(tx, r)
				batch = append(batch, it)
				return len(batch) < opts.batch(), err
			})
		})
		if err != nil || len(batch) == 0 {
			return err
		}
		err = to.Import(ctx, tenant, func(tx storage.ImportTx) error {
			for _, it := range batch {
				if err := putItem(tx, c, it); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		done += len(batch)
		after = batch[len(batch)-1].rec.ID
		opts.progress(tenant, c.Name, done, total)
	}
}

func putItem(tx storage.ImportTx, c *storage.Collection, it item) error {
	r := it.rec
	doc, err := storage.DecodeDoc(r.Doc)
	if err != nil {
		return err
	}
	r.Keys = c.KeysOf(doc)
	if err := tx.PutRecord(c, r); err != nil {
		return err
	}
	for _, m := range it.members {
		if err := tx.AddMember(r.ID, m); err != nil {
			return err
		}
	}
	if it.facts != (storage.Facts{}) {
		if err := tx.PutFacts(r.ID, it.facts); err != nil {
			return err
		}
	}
	for _, p := range it.campaigns {
		if _, _, err := tx.AddParticipant(p.Campaign, r.ID); err != nil {
			return err
		}
		if !p.Current { // ended: kept, so that a later assignment is not counted as a first
			if _, err := tx.RemoveParticipant(p.Campaign, r.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

// copyTrail copies the events after the last one the destination holds, oldest first.
func copyTrail(ctx context.Context, from storage.Store, to storage.Importer, tenant string, opts *Options) error {
	var after uint64
	done := 0 // events the destination holds
	if err := to.Import(ctx, tenant, func(tx storage.ImportTx) error {
		var err error
		if after, err = tx.LastSeq(); err != nil {
			return err
		}
		done, err = tx.TrailLength()
		return err
	}); err != nil {
		return err
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var batch []storage.Event
		total := 0
		err := from.Read(ctx, tenant, func(tx storage.Tx) error {
			var err error
			if total, err = tx.TrailLength(); err != nil {
				return err
			}
			batch = batch[:0]
			return tx.Events(after, func(ev storage.Event) (bool, error) {
				batch = append(batch, ev)
				return len(batch) < opts.batch(), nil
			})
		})
		if err != nil || len(batch) == 0 {
			return err
		}
		err = to.Import(ctx, tenant, func(tx storage.ImportTx) error {
			for _, ev := range batch {
				if err := tx.PutEvent(ev); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		after = batch[len(batch)-1].Seq
		done += len(batch)
		opts.progress(tenant, "trail", done, total)
	}
}

// Verify compares what both stores hold: the tenants and tokens, each tenant's record count per
// collection and trail length, and a sample of records spread over each collection (document,
// version, times, secret, memberships, facts). It returns the differences it found.
func Verify(ctx context.Context, from, to storage.Store, opts Options) ([]string, error) {
	samples := opts.Samples
	if samples <= 0 {
		samples = 1000
	}
	var diffs []string
	differ := func(format string, args ...any) { diffs = append(diffs, fmt.Sprintf(format, args...)) }
	var tenants []storage.Tenant
	var nTokens int
	if err := from.ReadAdmin(ctx, func(a storage.AdminTx) error {
		var err error
		if tenants, err = a.Tenants(); err != nil {
			return err
		}
		tokens, err := a.Tokens("")
		nTokens = len(tokens)
		return err
	}); err != nil {
		return nil, err
	}
	if err := to.ReadAdmin(ctx, func(a storage.AdminTx) error {
		for _, t := range tenants {
			got, err := a.Tenant(t.ID)
			if err != nil || got.Name != t.Name || got.Disabled != t.Disabled {
				differ("tenant %s: missing or different", t.ID)
			}
		}
		tokens, err := a.Tokens("")
		if err == nil && len(tokens) != nTokens {
			differ("tokens: %d in the source, %d in the destination", nTokens, len(tokens))
		}
		return err
	}); err != nil {
		return nil, err
	}
	for _, t := range tenants {
		for _, c := range opts.Collections {
			d, err := verifyRecords(ctx, from, to, t.ID, c, samples)
			if err != nil {
				return nil, err
			}
			diffs = append(diffs, d...)
		}
		var n, m int
		if err := from.Read(ctx, t.ID, func(tx storage.Tx) (err error) { n, err = tx.TrailLength(); return }); err != nil {
			return nil, err
		}
		if err := to.Read(ctx, t.ID, func(tx storage.Tx) (err error) { m, err = tx.TrailLength(); return }); err != nil {
			return nil, err
		}
		if n != m {
			differ("tenant %s: %d audit events in the source, %d in the destination", t.ID, n, m)
		}
	}
	return diffs, nil
}

func verifyRecords(ctx context.Context, from, to storage.Store, tenant string, c *storage.Collection, samples int) ([]string, error) {
	var diffs []string
	var want []item
	var nFrom, nTo int
	err := from.Read(ctx, tenant, func(tx storage.Tx) error {
		nFrom = tx.Count(c)
		step := max(1, nFrom/samples)
		for off := 0; off < nFrom && len(want) < samples; off += step {
			err := tx.Scan(c, storage.Position{Offset: off}, func(r storage.Record) (bool, error) {
				it, err := readItem(tx, r)
				want = append(want, it)
				return false, err
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = to.Read(ctx, tenant, func(tx storage.Tx) error {
		nTo = tx.Count(c)
		for _, w := range want {
			r, err := tx.Get(c, w.rec.ID)
			if err != nil {
				diffs = append(diffs, fmt.Sprintf("tenant %s, %s: a sampled record is missing", tenant, c.Name))
				continue
			}
			got, err := readItem(tx, r)
			if err != nil {
				return err
			}
			if !sameItem(w, got) {
				diffs = append(diffs, fmt.Sprintf("tenant %s, %s: a sampled record differs", tenant, c.Name))
			}
		}
		return nil
	})
	if nFrom != nTo {
		diffs = append(diffs, fmt.Sprintf("tenant %s, %s: %d records in the source, %d in the destination", tenant, c.Name, nFrom, nTo))
	}
	return diffs, err
}

func readItem(tx storage.Tx, r storage.Record) (item, error) {
	it := item{rec: r}
	if err := tx.Members(r.ID, func(m storage.Member) error {
		it.members = append(it.members, m)
		return nil
	}); err != nil {
		return it, err
	}
	// Each engine lists a group's members in an order of its own (bolt: as they joined).
	slices.SortFunc(it.members, func(a, b storage.Member) int { return strings.Compare(a.Value, b.Value) })
	var err error
	if it.facts, err = tx.Facts(r.ID); err != nil {
		return it, err
	}
	it.campaigns, err = tx.Participations(r.ID)
	return it, err
}

// sameItem compares two records and what is kept beside them; times to the microsecond, the
// finest that every engine keeps.
func sameItem(a, b item) bool {
	same := func(x, y time.Time) bool { return x.Truncate(time.Microsecond).Equal(y.Truncate(time.Microsecond)) }
	return string(a.rec.Doc) == string(b.rec.Doc) && a.rec.Version == b.rec.Version &&
		same(a.rec.Created, b.rec.Created) && same(a.rec.Modified, b.rec.Modified) &&
		string(a.rec.Secret) == string(b.rec.Secret) && slices.Equal(a.members, b.members) &&
		sameFacts(a.facts, b.facts) && slices.Equal(a.campaigns, b.campaigns)
}

func sameFacts(a, b storage.Facts) bool {
	same := func(x, y *time.Time) bool {
		return (x == nil) == (y == nil) && (x == nil || x.Truncate(time.Microsecond).Equal(y.Truncate(time.Microsecond)))
	}
	return a.Interactions == b.Interactions && a.Campaigns == b.Campaigns && same(a.FirstInteractionAt, b.FirstInteractionAt) &&
		same(a.LastInteractionAt, b.LastInteractionAt) && same(a.AnonymizedAt, b.AnonymizedAt) && same(a.ScrubbedAt, b.ScrubbedAt)
}
