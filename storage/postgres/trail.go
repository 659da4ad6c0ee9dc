package postgres

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/scimserver/scimserver/storage"
)

// storedEvent is an Event's fields besides those the events table has columns for.
type storedEvent struct {
	ActorID      string   `json:"a,omitempty"`
	ActorName    string   `json:"n,omitempty"`
	Operation    string   `json:"o"`
	ResourceType string   `json:"r,omitempty"`
	Attributes   []string `json:"x,omitempty"`
	Related      string   `json:"l,omitempty"`
	RelatedType  string   `json:"lt,omitempty"`
	Version      uint64   `json:"v,omitempty"`
	Outcome      string   `json:"s,omitempty"` // empty: success
}

// Append numbers the event from the tenant's counter, read under the tenant's row lock: every
// earlier seq belongs to a transaction that committed before this one took the lock, so seq
// order is commit order, across every process sharing the database. A reader whose snapshot
// holds seq n therefore holds every smaller seq too, and a change feed following seq misses
// nothing.
func (t *tx) Append(ev storage.Event) error {
	if err := t.mustWrite(); err != nil {
		return err
	}
	ev.Seq, ev.Time = uint64(t.seq+1), t.now
	return t.putEvent(ev)
}

// putEvent stores ev with its Seq and Time, and moves the trail's counters to it.
func (t *tx) putEvent(ev storage.Event) error {
	outcome := ev.Outcome
	if outcome == "success" {
		outcome = ""
	}
	raw, err := json.Marshal(storedEvent{ActorID: ev.ActorID, ActorName: ev.ActorName, Operation: ev.Operation,
		ResourceType: ev.ResourceType, Attributes: ev.Attributes, Related: ev.Related, RelatedType: ev.RelatedType,
		Version: ev.Version, Outcome: outcome})
	if err != nil {
		return err
	}
	// Sent with the transaction's next statement: nothing waits for the append's answer.
	t.q.hold("INSERT INTO events (tid, seq, time, resource, doc) VALUES ($1, $2, $3, $4, $5)",
		t.tid, int64(ev.Seq), ev.Time.UnixNano(), []byte(ev.ResourceID), raw)
	t.seq, t.events, t.lastTime, t.appended = int64(ev.Seq), t.events+1, max(t.lastTime, ev.Time.UnixNano()), true
	return nil
}

const eventColumns = "seq, time, resource, doc"

func (t *tx) scanEvent(row pgx.CollectableRow) (storage.Event, error) {
	var seq, at int64
	var resource, raw []byte
	if err := row.Scan(&seq, &at, &resource, &raw); err != nil {
		return storage.Event{}, err
	}
	var se storedEvent
	if err := json.Unmarshal(raw, &se); err != nil {
		return storage.Event{}, err
	}
	ev := storage.Event{Seq: uint64(seq), Time: time.Unix(0, at).UTC(), Tenant: t.tenant, ActorID: se.ActorID,
		ActorName: se.ActorName, Operation: se.Operation, ResourceType: se.ResourceType, ResourceID: string(resource),
		Attributes: se.Attributes, Related: se.Related, RelatedType: se.RelatedType, Version: se.Version, Outcome: se.Outcome}
	if ev.Outcome == "" {
		ev.Outcome = "success"
	}
	return ev, nil
}

func (t *tx) queryEvents(query string, args ...any) ([]storage.Event, error) {
	rows, err := t.q.Query(t.ctx, query, args...)
	if err != nil {
		return nil, dbError(err)
	}
	evs, err := pgx.CollectRows(rows, t.scanEvent)
	return evs, dbError(err)
}

func (t *tx) Trail(q storage.TrailQuery) ([]storage.Event, uint64, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	where := []string{"tid = $1"}
	args := []any{t.tid}
	arg := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
	}
	if q.ResourceID != "" {
		arg("resource = ?", []byte(q.ResourceID))
	}
	if q.Before > 0 {
		arg("seq < ?", int64(min(q.Before, 1<<63-1)))
	}
	if !q.Since.IsZero() {
		arg("time >= ?", q.Since.UnixNano())
	}
	if !q.Until.IsZero() {
		arg("time <= ?", q.Until.UnixNano())
	}
	args = append(args, q.Limit+1)
	evs, err := t.queryEvents("SELECT "+eventColumns+" FROM events WHERE "+strings.Join(where, " AND ")+
		" ORDER BY seq DESC LIMIT $"+strconv.Itoa(len(args)), args...)
	if err != nil || len(evs) <= q.Limit {
		return evs, 0, err
	}
	evs = evs[:q.Limit]
	return evs, evs[len(evs)-1].Seq, nil
}

func (t *tx) Events(after uint64, fn func(storage.Event) (bool, error)) error {
	last := int64(min(after, 1<<63-1))
	for chunk := firstChunk; ; chunk = min(4*chunk, maxChunk) {
		evs, err := t.queryEvents("SELECT "+eventColumns+" FROM events WHERE tid = $1 AND seq > $2 ORDER BY seq LIMIT $3", t.tid, last, chunk)
		if err != nil {
			return err
		}
		for _, ev := range evs {
			more, err := fn(ev)
			if err != nil || !more {
				return err
			}
		}
		if len(evs) < chunk {
			return nil
		}
		last = int64(evs[len(evs)-1].Seq)
	}
}

func (t *tx) TrailLength() (int, error) {
	if err := t.head(); err != nil {
		return 0, err
	}
	return int(t.events), nil
}

// Erased records the erasure. PostgreSQL keeps old row versions until VACUUM reclaims them (and
// their bytes until the space is reused), so the engine keeps the record of pending erasures.
func (t *tx) Erased(user string) error {
	if err := t.mustWrite(); err != nil {
		return err
	}
	_, err := t.q.Exec(t.ctx, "INSERT INTO erasures (tid, uid, at) VALUES ($1, $2, $3)", t.tid, []byte(user), t.now.UnixNano())
	return dbError(err)
}

// importTx is a write transaction with the import methods.
type importTx struct{ *tx }

func (t importTx) PutRecord(c *storage.Collection, r storage.Record) error {
	d, err := t.coll(c)
	if err != nil {
		return err
	}
	if err := storage.CheckID(r.ID); err != nil {
		return err
	}
	_, _, err = t.replace(d, r, r.Modified, r.Version, 0, true)
	if storage.ErrorCode(err) != storage.NotFound {
		return err
	}
	l, err := entriesOf(d, r.Keys)
	if err != nil {
		return err
	}
	return t.insert(d, r, l, r.Created, r.Modified, r.Version)
}

func (t importTx) PutEvent(ev storage.Event) error {
	if int64(ev.Seq) <= t.seq || ev.Seq > 1<<63-1 {
		return storage.Errorf(storage.Invalid, "an imported event's seq must follow the trail's last")
	}
	ev.Time = ev.Time.UTC()
	return t.putEvent(ev)
}

func (t importTx) LastSeq() (uint64, error) { return uint64(t.seq), nil }
