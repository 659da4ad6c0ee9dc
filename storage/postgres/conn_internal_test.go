package postgres

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/scimserver/scimserver/storage"
	"github.com/scimserver/scimserver/storage/postgres/pgtest"
	"github.com/scimserver/scimserver/storage/storagetest"
)

// named is a record of c whose document is attr set to name, with its index keys.
func named(c *storage.Collection, id, attr, name string) storage.Record {
	return storage.Record{ID: id, Doc: fmt.Appendf(nil, `{%q:%q}`, attr, name), Keys: c.KeysOf(map[string]any{attr: name})}
}

// roundTrips records what a connection sends, one entry per round trip (a statement alone, or
// a pipeline).
type roundTrips struct {
	mu    sync.Mutex
	trips [][]string
}

func (r *roundTrips) add(sql ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.trips = append(r.trips, sql)
}

func (r *roundTrips) take() [][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.trips
	r.trips = nil
	return t
}

func (r *roundTrips) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	r.add(d.SQL)
	return ctx
}

func (r *roundTrips) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (r *roundTrips) TraceBatchStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceBatchStartData) context.Context {
	var sql []string
	for _, q := range d.Batch.QueuedQueries {
		sql = append(sql, q.SQL)
	}
	r.add(sql...)
	return ctx
}

func (r *roundTrips) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (r *roundTrips) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

// TestTransactionRoundTrips pins what a transaction sends and when: its BEGIN and held
// statements ride with the first statement that needs an answer, and a transaction that never
// sent anything ends without a round trip, committed or not.
func TestTransactionRoundTrips(t *testing.T) {
	cfg, err := pgxpool.ParseConfig(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	trips := &roundTrips{}
	cfg.ConnConfig.Tracer = trips
	ctx := context.Background()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	const begin = "BEGIN ISOLATION LEVEL READ COMMITTED"
	for _, tc := range []struct {
		name   string
		run    func(c *conn) error // the transaction's statements
		commit bool
		want   [][]string
	}{
		{"nothing, committed", func(*conn) error { return nil }, true, nil},
		{"nothing, rolled back", func(*conn) error { return nil }, false, nil},
		{"held only, rolled back", func(c *conn) error { c.hold("SAVEPOINT w"); return nil }, false, nil},
		{"held only, committed", func(c *conn) error { c.hold("SAVEPOINT w"); return nil }, true,
			[][]string{{begin, "SAVEPOINT w", "COMMIT"}}},
		{"a statement, committed", func(c *conn) error { _, err := c.Exec(ctx, "SELECT 1"); return err }, true,
			[][]string{{begin, "SELECT 1"}, {"COMMIT"}}},
		{"a statement, rolled back", func(c *conn) error { _, err := c.Exec(ctx, "SELECT 1"); return err }, false,
			[][]string{{begin, "SELECT 1"}, {"ROLLBACK"}}},
		{"a statement, then held, committed", func(c *conn) error {
			_, err := c.Exec(ctx, "SELECT 1")
			c.hold("SAVEPOINT w")
			return err
		}, true, [][]string{{begin, "SELECT 1"}, {"SAVEPOINT w", "COMMIT"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pc, err := pool.Acquire(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer pc.Release()
			trips.take()
			c := &conn{c: pc}
			c.begin(pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
			if err := tc.run(c); err != nil {
				t.Fatal(err)
			}
			if err := c.end(ctx, tc.commit); err != nil {
				t.Fatal(err)
			}
			if got := trips.take(); !slices.EqualFunc(got, tc.want, slices.Equal) {
				t.Errorf("round trips %q, want %q", got, tc.want)
			}
			if st := pc.Conn().PgConn().TxStatus(); st != 'I' {
				t.Errorf("the connection is left in transaction state %q, not idle", st)
			}
		})
	}
}

// TestReadFetchesGroupsAndFactsWithTheRecord: in a read-only transaction, the statement that
// reads a record (Get, or a scan's first chunks) also reads its groups and facts, which rendering it asks for next: once the
// record is read, no further statement is needed for them (here any fails, and so does the
// read's end). A write reads
// them afresh, after its own membership changes.
func TestReadFetchesGroupsAndFactsWithTheRecord(t *testing.T) {
	ctx := context.Background()
	s := OpenTenant(t, pgtest.URL(t), Options{Collections: []*storage.Collection{storagetest.People}})
	uid, bare, team, other := storage.NewID(), storage.NewID(), storage.NewID(), storage.NewID()
	err := s.Write(ctx, "t", func(tx storage.Tx) error {
		for _, id := range []string{uid, bare} {
			r := named(storagetest.People, id, "userName", id)
			if _, err := tx.Insert(storagetest.People, r); err != nil {
				return err
			}
		}
		for _, g := range []string{team, other} {
			if err := tx.AddMember(g, storage.Member{Value: uid, Type: "User"}); err != nil {
				return err
			}
		}
		return tx.PutFacts(uid, storage.Facts{Interactions: 3})
	})
	if err != nil {
		t.Fatal(err)
	}
	noMore := errors.New("no statement may follow the record's")
	for _, tc := range []struct {
		id     string
		groups []string
		facts  storage.Facts
	}{
		{uid, slices.Sorted(slices.Values([]string{team, other})), storage.Facts{Interactions: 3}},
		{bare, nil, storage.Facts{}},
	} {
		err = s.Read(ctx, "t", func(st storage.Tx) error {
			tx := st.(*tx)
			if _, err := tx.Get(storagetest.People, tc.id); err != nil {
				return err
			}
			tx.q.failed = noMore
			groups, err := tx.MemberOf(tc.id)
			if err != nil || !slices.Equal(groups, tc.groups) {
				t.Errorf("groups of %s: %v %v, want %v", tc.id, groups, err, tc.groups)
			}
			if f, err := tx.Facts(tc.id); err != nil || f.Interactions != tc.facts.Interactions {
				t.Errorf("facts of %s: %+v %v, want %+v", tc.id, f, err, tc.facts)
			}
			if _, err := tx.MemberOf(team); err == nil {
				t.Errorf("the groups of a record not read came without a statement: %v", err)
			}
			return nil
		})
		if err == nil {
			t.Fatal("the read committed after a statement failed")
		}
	}
	// A scan reads them with its first records (a page), not with every record it reads.
	err = s.Write(ctx, "t", func(tx storage.Tx) error {
		for i := range 2500 {
			name := fmt.Sprintf("many%d", i)
			r := named(storagetest.People, storage.NewID(), "userName", name)
			if _, err := tx.Insert(storagetest.People, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// A scan that says how many records it wants reads them in one statement.
	err = s.Read(ctx, "t", func(st storage.Tx) error {
		tx := st.(*tx)
		scanned := 0
		err := tx.Scan(storagetest.People, storage.Position{Want: 101}, func(storage.Record) (bool, error) {
			tx.q.failed = noMore
			scanned++
			return scanned < 101, nil
		})
		if err != nil || scanned != 101 {
			t.Errorf("a scan that wants 101 records: %d, %v", scanned, err)
		}
		return nil
	})
	if err == nil {
		t.Fatal("the read committed after a statement failed")
	}
	err = s.Read(ctx, "t", func(st storage.Tx) error {
		tx := st.(*tx)
		scanned := 0
		if err := tx.Scan(storagetest.People, storage.Position{}, func(storage.Record) (bool, error) { scanned++; return true, nil }); err != nil {
			return err
		}
		if scanned != 2502 || len(tx.fetched) < 2 || len(tx.fetched) > fetchedScan+maxChunk {
			t.Errorf("a scan of %d records kept what %d of them have beside", scanned, len(tx.fetched))
		}
		tx.q.failed = noMore
		if groups, err := tx.MemberOf(uid); err != nil || len(groups) != 2 {
			t.Errorf("groups of the first record scanned: %v %v", groups, err)
		}
		return nil
	})
	if err == nil {
		t.Fatal("the read committed after a statement failed")
	}
	err = s.Write(ctx, "t", func(tx storage.Tx) error {
		if _, err := tx.Get(storagetest.People, bare); err != nil {
			return err
		}
		if err := tx.AddMember(team, storage.Member{Value: bare, Type: "User"}); err != nil {
			return err
		}
		if groups, err := tx.MemberOf(bare); err != nil || !slices.Equal(groups, []string{team}) {
			t.Errorf("a write's groups after its own change: %v %v", groups, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestReadReadsGroupsTogether: in a read-only transaction, a record Get read (or did not find)
// is answered again without a statement, and the first Get of a group of a record read so far
// reads all such groups in one statement, the others then coming without one; a group with no
// record is NotFound, a Get of anything else still reads it, and a write reads afresh.
func TestReadReadsGroupsTogether(t *testing.T) {
	ctx := context.Background()
	s := OpenTenant(t, pgtest.URL(t), Options{Collections: []*storage.Collection{storagetest.People, storagetest.Teams}})
	var users, teams []string
	gone, missing := storage.NewID(), storage.NewID() // a membership whose group has no record; no record
	err := s.Write(ctx, "t", func(tx storage.Tx) error {
		for i := range 3 {
			id := storage.NewID()
			teams = append(teams, id)
			name := fmt.Sprintf("team%d", i)
			if _, err := tx.Insert(storagetest.Teams, named(storagetest.Teams, id, "displayName", name)); err != nil {
				return err
			}
		}
		for i := range 3 {
			id := storage.NewID()
			users = append(users, id)
			name := fmt.Sprintf("user%d", i)
			if _, err := tx.Insert(storagetest.People, named(storagetest.People, id, "userName", name)); err != nil {
				return err
			}
			// user i is in teams 0..i; user 0 also in the group without a record
			for _, g := range teams[:i+1] {
				if err := tx.AddMember(g, storage.Member{Value: id, Type: "User"}); err != nil {
					return err
				}
			}
		}
		return tx.AddMember(gone, storage.Member{Value: users[0], Type: "User"})
	})
	if err != nil {
		t.Fatal(err)
	}
	noMore := errors.New("no statement may follow")
	wantName := func(tx *tx, i int) {
		t.Helper()
		g, err := tx.Get(storagetest.Teams, teams[i])
		if want := fmt.Sprintf(`{"displayName":"team%d"}`, i); err != nil || g.ID != teams[i] || string(g.Doc) != want || g.Version != 1 {
			t.Errorf("team %d read ahead: %+v %v, want %s", i, g, err, want)
		}
	}
	// A GET: the user, then its groups; a record read again, or looked for again, is answered
	// from the first read.
	err = s.Read(ctx, "t", func(st storage.Tx) error {
		tx := st.(*tx)
		if _, err := tx.Get(storagetest.People, users[2]); err != nil {
			return err
		}
		if _, err := tx.Get(storagetest.People, missing); storage.ErrorCode(err) != storage.NotFound {
			t.Errorf("a record not stored: %v, want NotFound", err)
		}
		wantName(tx, 1) // one statement for the three
		tx.q.failed = noMore
		if r, err := tx.Get(storagetest.People, users[2]); err != nil || r.ID != users[2] || string(r.Doc) != `{"userName":"user2"}` {
			t.Errorf("a record read again: %+v %v", r, err)
		}
		if _, err := tx.Get(storagetest.People, missing); storage.ErrorCode(err) != storage.NotFound {
			t.Errorf("a record not stored, looked for again: %v, want NotFound", err)
		}
		wantName(tx, 0)
		wantName(tx, 2)
		wantName(tx, 1)
		if _, err := tx.Get(storagetest.People, users[1]); err == nil {
			t.Errorf("a record that is no group of what was read came without a statement: %v", err)
		}
		return nil
	})
	if err == nil {
		t.Fatal("the read committed after a statement failed")
	}
	// A page: every group of the records scanned, in one statement; the group without a record
	// is NotFound.
	err = s.Read(ctx, "t", func(st storage.Tx) error {
		tx := st.(*tx)
		if err := tx.Scan(storagetest.People, storage.Position{}, func(storage.Record) (bool, error) { return true, nil }); err != nil {
			return err
		}
		if _, err := tx.Get(storagetest.Teams, gone); storage.ErrorCode(err) != storage.NotFound {
			t.Errorf("a group without a record: %v, want NotFound", err)
		}
		tx.q.failed = noMore
		for i := range teams {
			wantName(tx, i)
		}
		if _, err := tx.Get(storagetest.Teams, gone); storage.ErrorCode(err) != storage.NotFound {
			t.Errorf("a group without a record, again: %v, want NotFound", err)
		}
		return nil
	})
	if err == nil {
		t.Fatal("the read committed after a statement failed")
	}
	// A write reads what it is asked for, as it stands after its own changes.
	err = s.Write(ctx, "t", func(tx storage.Tx) error {
		if _, err := tx.Get(storagetest.People, users[2]); err != nil {
			return err
		}
		if g, err := tx.Get(storagetest.Teams, teams[0]); err != nil || string(g.Doc) != `{"displayName":"team0"}` {
			t.Errorf("a write's read of a group: %s %v", g.Doc, err)
		}
		if _, err := tx.Update(storagetest.Teams, named(storagetest.Teams, teams[0], "displayName", "renamed")); err != nil {
			return err
		}
		g, err := tx.Get(storagetest.Teams, teams[0])
		if err != nil || string(g.Doc) != `{"displayName":"renamed"}` {
			t.Errorf("a write's read of a group it changed: %s %v", g.Doc, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestWriteReadsFactsWithTheRecord: a write's Get reads the record's facts in its statement, so
// that the answer's facts, read in the commit, cost no round trip of their own; facts the write
// changes are read as changed.
func TestWriteReadsFactsWithTheRecord(t *testing.T) {
	ctx := context.Background()
	s := OpenTenant(t, pgtest.URL(t), Options{Collections: []*storage.Collection{storagetest.People}})
	uid, bare := storage.NewID(), storage.NewID()
	err := s.Write(ctx, "t", func(tx storage.Tx) error {
		for _, id := range []string{uid, bare} {
			if _, err := tx.Insert(storagetest.People, named(storagetest.People, id, "userName", id)); err != nil {
				return err
			}
		}
		return tx.PutFacts(uid, storage.Facts{Interactions: 3})
	})
	if err != nil {
		t.Fatal(err)
	}
	noMore := errors.New("no statement may follow the record's")
	_ = s.Write(ctx, "t", func(st storage.Tx) error { // it cannot commit: its statements fail
		tx := st.(*tx)
		for _, id := range []string{uid, bare} {
			if _, err := tx.Get(storagetest.People, id); err != nil {
				return err
			}
		}
		tx.q.failed = noMore
		for id, want := range map[string]int{uid: 3, bare: 0} {
			if f, err := tx.Facts(id); err != nil || f.Interactions != want {
				t.Errorf("facts of %s read with the record: %+v %v, want %d interactions", id, f, err, want)
			}
		}
		return nil
	})
	err = s.Write(ctx, "t", func(tx storage.Tx) error {
		if _, err := tx.Get(storagetest.People, uid); err != nil {
			return err
		}
		return putFactsAndReadBack(t, tx, uid, 4, "facts the write changed")
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestPreparedMembersAnswerAsUnprepared: after PrepareMembers, a write's membership reads,
// existence checks, facts and touches of the members named give what they give without it, and
// send nothing to wait for (here every statement sent fails); its changes, held back, are
// committed with it.
func TestPreparedMembersAnswerAsUnprepared(t *testing.T) {
	ctx := context.Background()
	s := OpenTenant(t, pgtest.URL(t), Options{Collections: []*storage.Collection{storagetest.People, storagetest.Teams}})
	team, team2, missing := storage.NewID(), storage.NewID(), storage.NewID()
	var u []string
	err := s.Write(ctx, "t", func(tx storage.Tx) error {
		for i, g := range []string{team, team2} {
			name := fmt.Sprintf("team%d", i)
			if _, err := tx.Insert(storagetest.Teams, named(storagetest.Teams, g, "displayName", name)); err != nil {
				return err
			}
		}
		for i := range 3 {
			id := storage.NewID()
			u = append(u, id)
			name := fmt.Sprintf("user%d", i)
			if _, err := tx.Insert(storagetest.People, named(storagetest.People, id, "userName", name)); err != nil {
				return err
			}
		}
		if err := tx.AddMember(team, storage.Member{Value: u[0], Type: "User", Display: "zero"}); err != nil {
			return err
		}
		return tx.PutFacts(u[2], storage.Facts{Interactions: 7})
	})
	if err != nil {
		t.Fatal(err)
	}
	script := func(tx *tx) []string {
		var out []string
		say := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
		member := func(id string) {
			m, ok, err := tx.Member(team, id)
			say("member %s: %+v %v %v", id, m, ok, err)
		}
		for _, id := range []string{u[0], u[1], missing} {
			member(id)
		}
		say("exists %v %v %v %v", tx.Exists(storagetest.People, u[0]), tx.Exists(storagetest.People, missing),
			tx.Exists(storagetest.Teams, team2), tx.Exists(storagetest.Teams, u[0]))
		for _, id := range []string{u[2], u[0]} {
			f, err := tx.Facts(id)
			say("facts %s: %d %v", id, f.Interactions, err)
		}
		for _, c := range []struct {
			coll *storage.Collection
			id   string
		}{{storagetest.People, u[1]}, {storagetest.People, missing}, {storagetest.Teams, team2}, {storagetest.People, u[1]}} {
			say("touch %s: %v", c.id, storage.ErrorCode(tx.Touch(c.coll, c.id)))
		}
		say("add: %v", tx.AddMember(team, storage.Member{Value: u[1], Type: "User", Display: "one"}))
		member(u[1])
		for _, id := range []string{u[0], u[0], missing} {
			removed, err := tx.RemoveMember(team, id)
			say("remove %s: %v %v", id, removed, err)
		}
		member(u[0])
		return out
	}
	undo := errors.New("undo")
	var want, got []string
	if err := s.Write(ctx, "t", func(st storage.Tx) error { want = script(st.(*tx)); return undo }); err != undo {
		t.Fatal(err)
	}
	noMore := errors.New("no statement may be sent")
	_ = s.Write(ctx, "t", func(st storage.Tx) error { // it cannot commit: its statements fail
		tx := st.(*tx)
		if err := tx.PrepareMembers(team, []string{u[0], u[1], u[2], missing, team2, u[0]}, []*storage.Collection{storagetest.People, storagetest.Teams}); err != nil {
			return err
		}
		tx.q.failed = noMore
		got = script(tx)
		return nil
	})
	if !slices.Equal(got, want) {
		t.Errorf("prepared:\n%s\nunprepared:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The held changes are committed with the write.
	err = s.Write(ctx, "t", func(st storage.Tx) error {
		tx := st.(*tx)
		if err := tx.PrepareMembers(team, []string{u[0], u[1]}, []*storage.Collection{storagetest.People}); err != nil {
			return err
		}
		script(tx)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Read(ctx, "t", func(tx storage.Tx) error {
		var ids []string
		if err := tx.Members(team, func(m storage.Member) error { ids = append(ids, m.Value+" "+m.Display); return nil }); err != nil {
			return err
		}
		if want := []string{u[1] + " one"}; !slices.Equal(ids, want) {
			t.Errorf("members after the prepared write: %q, want %q", ids, want)
		}
		for _, c := range []struct {
			coll    *storage.Collection
			id      string
			version uint64
		}{{storagetest.People, u[1], 2}, {storagetest.Teams, team2, 2}, {storagetest.People, u[0], 1}} {
			if r, err := tx.Get(c.coll, c.id); err != nil || r.Version != c.version {
				t.Errorf("version of %s after the prepared write: %d %v, want %d", c.id, r.Version, err, c.version)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// A record deleted or created, or facts written, after PrepareMembers are read as they are now.
	fresh := storage.NewID()
	err = s.Write(ctx, "t", func(st storage.Tx) error {
		tx := st.(*tx)
		if err := tx.PrepareMembers(team, []string{u[1], u[2], fresh}, []*storage.Collection{storagetest.People}); err != nil {
			return err
		}
		if err := tx.Delete(storagetest.People, u[1]); err != nil {
			return err
		}
		if tx.Exists(storagetest.People, u[1]) || storage.ErrorCode(tx.Touch(storagetest.People, u[1])) != storage.NotFound {
			t.Errorf("a record deleted after PrepareMembers is still found")
		}
		if err := tx.PrepareMembers(team, []string{u[2], fresh}, []*storage.Collection{storagetest.People}); err != nil {
			return err
		}
		if _, err := tx.Insert(storagetest.People, named(storagetest.People, fresh, "userName", "fresh")); err != nil {
			return err
		}
		if !tx.Exists(storagetest.People, fresh) {
			t.Errorf("a record created after PrepareMembers is not found")
		}
		if err := tx.PrepareMembers(team, []string{u[2]}, []*storage.Collection{storagetest.People}); err != nil {
			return err
		}
		if err := putFactsAndReadBack(t, tx, u[2], 8, "facts written after PrepareMembers"); err != nil {
			return err
		}
		return undo
	})
	if err != undo {
		t.Fatal(err)
	}
}

// TestEachWriteOfABatchReadsAfresh: the writes of one batch share a transaction, and one that
// fails is rolled back to its savepoint; what it read or prepared does not answer the next.
func TestEachWriteOfABatchReadsAfresh(t *testing.T) {
	ctx := context.Background()
	s := OpenTenant(t, pgtest.URL(t), Options{Collections: []*storage.Collection{storagetest.People, storagetest.Teams}})
	team, uid, other := storage.NewID(), storage.NewID(), storage.NewID()
	colls := []*storage.Collection{storagetest.People}
	err := s.Write(ctx, "t", func(tx storage.Tx) error {
		if _, err := tx.Insert(storagetest.Teams, named(storagetest.Teams, team, "displayName", "team")); err != nil {
			return err
		}
		for _, id := range []string{uid, other} {
			if _, err := tx.Insert(storagetest.People, named(storagetest.People, id, "userName", id)); err != nil {
				return err
			}
		}
		return tx.PutFacts(uid, storage.Facts{Interactions: 1})
	})
	if err != nil {
		t.Fatal(err)
	}
	failed := errors.New("the first write fails")
	var member bool
	var facts storage.Facts
	calls := []*writeCall{
		{fn: func(tx *tx) error {
			if err := tx.PutFacts(uid, storage.Facts{Interactions: 9}); err != nil {
				return err
			}
			if _, err := tx.Get(storagetest.People, uid); err != nil { // reads the facts with it
				return err
			}
			if err := tx.PrepareMembers(team, []string{uid, other}, colls); err != nil {
				return err
			}
			if err := tx.AddMember(team, storage.Member{Value: uid, Type: "User"}); err != nil {
				return err
			}
			return failed
		}},
		{fn: func(tx *tx) error {
			if _, err := tx.Get(storagetest.People, other); err != nil {
				return err
			}
			var err error
			if _, member, err = tx.Member(team, uid); err != nil {
				return err
			}
			facts, err = tx.Facts(uid)
			return err
		}},
	}
	s.commitBatch(ctx, "t", calls)
	if calls[0].err != failed || calls[1].err != nil {
		t.Fatalf("the batch's writes: %v, %v", calls[0].err, calls[1].err)
	}
	if member || facts.Interactions != 1 {
		t.Errorf("the second write saw the first one's rolled back changes: member %v, facts %+v", member, facts)
	}
}

// TestLookupsAmongKeysProbe: the statements that look many keys up (PrepareMembers' reads, the
// groups a read reads ahead) read only the rows they return, even from tables PostgreSQL has no
// statistics for yet — a group and a tenant just loaded, where "= ANY" was planned as a filter
// over every row of the group or the tenant.
func TestLookupsAmongKeysProbe(t *testing.T) {
	ctx := context.Background()
	s := OpenTenant(t, pgtest.URL(t), Options{Collections: []*storage.Collection{storagetest.People, storagetest.Teams}})
	var tid int64
	if err := s.pool.QueryRow(ctx, "SELECT tid FROM tenants WHERE id = 't'").Scan(&tid); err != nil {
		t.Fatal(err)
	}
	const n = 20000
	for _, sql := range []string{
		"ALTER TABLE records SET (autovacuum_enabled = false)",
		"ALTER TABLE members SET (autovacuum_enabled = false)",
		"ALTER TABLE facts SET (autovacuum_enabled = false)",
		`INSERT INTO records (tid, coll, id, doc, created, modified, version)
			SELECT $1, 'people', int8send(g), '{}', 0, 0, 1 FROM generate_series(1, $2::bigint) g`,
		"INSERT INTO members (tid, grp, member, type, display) SELECT $1, '\\x00', int8send(g), 'User', '' FROM generate_series(1, $2::bigint) g",
		"INSERT INTO facts (tid, uid, doc) SELECT $1, int8send(g), '{}' FROM generate_series(1, $2::bigint) g",
	} {
		args := []any{tid, n}
		if !strings.Contains(sql, "$1") {
			args = nil
		}
		if _, err := s.pool.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	var ids [][]byte
	for i := range 100 {
		ids = append(ids, binary.BigEndian.AppendUint64(nil, uint64(n/2+i)))
	}
	for _, c := range []struct {
		name, sql string
		args      []any
	}{
		{"membersAmong", membersAmong, []any{tid, []byte{0}, ids}},
		{"recordsAmong", recordsAmong, []any{tid, []string{"people", "teams"}, ids}},
		{"factsAmong", factsAmong, []any{tid, ids}},
		{"recordsByID", recordsByID, []any{tid, "people", ids}},
	} {
		rows, err := s.pool.Query(ctx, "EXPLAIN (ANALYZE, TIMING OFF, SUMMARY OFF) "+c.sql, c.args...)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		plan := strings.Join(lines, "\n")
		for _, bad := range []string{"Rows Removed by Filter", "Seq Scan", "Bitmap Heap Scan", "Hash Join"} {
			if strings.Contains(plan, bad) {
				t.Errorf("%s reads rows it does not return (%s):\n%s", c.name, bad, plan)
				break
			}
		}
	}
}

// TestFindTokenIsOneStatement: the token check every request makes on a shared store is one
// round trip, the statement alone, with no BEGIN or COMMIT around it.
func TestFindTokenIsOneStatement(t *testing.T) {
	url := pgtest.URL(t)
	ctx := context.Background()
	s, err := Open(ctx, url, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tok := storage.Token{ID: "tok-1", Tenant: "t", Name: "idp", Scopes: []string{"scim"}, Created: time.Now().UTC(), Hash: "ab"}
	err = s.WriteAdmin(ctx, func(a storage.AdminTx) error {
		if err := a.PutTenant(storage.Tenant{ID: "t", Name: "t", Created: time.Now().UTC()}); err != nil {
			return err
		}
		return a.PutToken(tok)
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	trips := &roundTrips{}
	cfg.ConnConfig.Tracer = trips
	traced, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer traced.Close()
	// A store over the same schema with a traced pool, and none of the open store's background
	// work, whose statements would be counted too.
	bare := &Store{pool: traced, txTimeout: time.Minute}
	got, tenant, err := bare.FindToken(ctx, []byte{0xab})
	if err != nil || got.ID != tok.ID || tenant == nil || tenant.ID != "t" {
		t.Fatalf("FindToken: %+v, tenant %+v, %v", got, tenant, err)
	}
	if got, want := trips.take(), [][]string{{tokenWithTenant}}; !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("round trips %q, want %q", got, want)
	}
}

// putFactsAndReadBack writes n interactions as uid's facts in tx and expects them read back.
func putFactsAndReadBack(t *testing.T, tx storage.Tx, uid string, n int, what string) error {
	t.Helper()
	if err := tx.PutFacts(uid, storage.Facts{Interactions: n}); err != nil {
		return err
	}
	if f, err := tx.Facts(uid); err != nil || f.Interactions != n {
		t.Errorf("%s: %+v %v, want %d interactions", what, f, err, n)
	}
	return nil
}
