package postgres

import (
	"github.com/jackc/pgx/v5"

	"github.com/scimserver/scimserver/storage"
)

// prepared is what PrepareMembers read for the write running now: the memberships of one group
// among the members named, which of them are records of which collection, and their facts. The
// write's own membership changes and touches keep it current; anything else that could change it
// (a record created or deleted, facts written) drops it, and each write of a batch starts
// without it (a write rolled back to its savepoint leaves nothing of what it prepared).
type prepared struct {
	group   string
	members map[string]*storage.Member // nil: not a member
	records map[string]bool            // by changeKey, for each member and collection named
	facts   map[string][]byte          // nil: none stored
}

var _ storage.MemberPreparer = (*tx)(nil)

func (t *tx) PrepareMembers(group string, members []string, colls []*storage.Collection) error {
	if err := t.mustWrite(); err != nil {
		return err
	}
	p := &prepared{group: group, members: map[string]*storage.Member{}, records: map[string]bool{}, facts: map[string][]byte{}}
	ids := make([][]byte, 0, len(members))
	seen := map[string]bool{}
	for _, m := range members {
		if !seen[m] {
			seen[m] = true
			p.facts[m], p.members[m] = nil, nil
			ids = append(ids, []byte(m))
		}
	}
	names := make([]string, 0, len(colls))
	byName := map[string]*storage.Collection{}
	for _, c := range colls {
		d, err := t.coll(c)
		if err != nil {
			return err
		}
		names = append(names, d.Name)
		byName[d.Name] = d
		for m := range seen {
			p.records[changeKey(d, m)] = false
		}
	}
	b := &pgx.Batch{}
	b.Queue(membersAmong, t.tid, []byte(group), ids).
		Query(func(rows pgx.Rows) error {
			var v, typ, display []byte
			_, err := pgx.ForEachRow(rows, []any{&v, &typ, &display}, func() error {
				p.members[string(v)] = &storage.Member{Value: string(v), Type: string(typ), Display: string(display)}
				return nil
			})
			return err
		})
	b.Queue(recordsAmong, t.tid, names, ids).
		Query(func(rows pgx.Rows) error {
			var coll string
			var id []byte
			_, err := pgx.ForEachRow(rows, []any{&coll, &id}, func() error {
				p.records[changeKey(byName[coll], string(id))] = true
				return nil
			})
			return err
		})
	b.Queue(factsAmong, t.tid, ids).
		Query(func(rows pgx.Rows) error {
			var uid, doc []byte
			_, err := pgx.ForEachRow(rows, []any{&uid, &doc}, func() error {
				p.facts[string(uid)] = doc
				return nil
			})
			return err
		})
	if err := t.q.SendBatch(t.ctx, b).Close(); err != nil {
		return dbError(err)
	}
	t.prep = p
	return nil
}

// What PrepareMembers reads. Each statement looks its keys up one by one (LATERAL … LIMIT 1),
// which PostgreSQL plans as index probes whatever it knows of the tables; with "= ANY" and no
// statistics yet (a group or a tenant just loaded), it may read every row of the group or the
// tenant instead (TestLookupsAmongKeysProbe).
const (
	membersAmong = `SELECT m.member, m.type, m.display FROM unnest($3::bytea[]) AS x(want)
		CROSS JOIN LATERAL (SELECT member, type, display FROM members WHERE tid = $1 AND grp = $2 AND member = x.want LIMIT 1) m`
	recordsAmong = `SELECT r.coll, r.id FROM unnest($2::text[]) AS c(name) CROSS JOIN unnest($3::bytea[]) AS x(want)
		CROSS JOIN LATERAL (SELECT coll, id FROM records WHERE tid = $1 AND coll = c.name AND id = x.want LIMIT 1) r`
	factsAmong = `SELECT f.uid, f.doc FROM unnest($2::bytea[]) AS x(want)
		CROSS JOIN LATERAL (SELECT uid, doc FROM facts WHERE tid = $1 AND uid = x.want LIMIT 1) f`
)

// membership answers Member from what was prepared (ok).
func (p *prepared) membership(group, member string) (m *storage.Member, ok bool) {
	if p == nil || group != p.group {
		return nil, false
	}
	m, ok = p.members[member]
	return m, ok
}

// factsOf answers Facts from what was prepared (ok).
func (p *prepared) factsOf(user string) (raw []byte, ok bool) {
	if p == nil {
		return nil, false
	}
	raw, ok = p.facts[user]
	return raw, ok
}

// record answers whether id is a record of collection d from what was prepared (ok).
func (p *prepared) record(d *storage.Collection, id string) (exists, ok bool) {
	if p == nil {
		return false, false
	}
	exists, ok = p.records[changeKey(d, id)]
	return exists, ok
}
