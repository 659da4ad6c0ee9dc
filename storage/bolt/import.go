package bolt

import (
	"context"
	"encoding/binary"

	"github.com/scimserver/scimserver/storage"
)

var _ storage.Importer = (*Store)(nil)

// Import runs fn in a write transaction that can store records and events as another store
// kept them.
func (s *Store) Import(ctx context.Context, tenant string, fn func(storage.ImportTx) error) error {
	return s.Write(ctx, tenant, func(t storage.Tx) error { return fn(importTx{t.(*tx)}) })
}

type importTx struct{ *tx }

func (t importTx) PutRecord(c *storage.Collection, r storage.Record) error {
	cl, err := t.coll(c)
	if err != nil {
		return err
	}
	if err := t.mustWrite(); err != nil {
		return err
	}
	if err := storage.CheckID(r.ID); err != nil {
		return err
	}
	raw := t.b.Bucket(cl.records).Get([]byte(r.ID))
	if raw == nil {
		return t.add(cl, r)
	}
	h, doc, err := decodeRecord(raw)
	if err != nil {
		return err
	}
	if err := t.reindex(cl, r.ID, &h, doc, r.Keys); err != nil {
		return err
	}
	return t.put(cl, r, h.events())
}

func (t importTx) PutEvent(ev storage.Event) error {
	if err := t.mustWrite(); err != nil {
		return err
	}
	last, err := t.LastSeq()
	if err != nil {
		return err
	}
	if ev.Seq <= last {
		return storage.Errorf(storage.Invalid, "an imported event must come after the trail's last")
	}
	if err := t.appended(bktTrail).SetSequence(ev.Seq); err != nil {
		return err
	}
	return t.putEvent(ev.Seq, ev.Time, ev)
}

func (t importTx) LastSeq() (uint64, error) {
	k, _ := t.b.Bucket(bktTrail).Cursor().Last()
	if k == nil {
		return 0, nil
	}
	return binary.BigEndian.Uint64(k), nil
}
