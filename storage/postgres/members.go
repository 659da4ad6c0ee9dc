package postgres

import (
	"encoding/json"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/scimserver/scimserver/storage"
)

// Memberships are one row each, with an index the other way round (members_of), so that a group
// of any size changes by one row per member added or removed, and a member's groups are found
// without reading any group.

func (t *tx) AddMember(group string, m storage.Member) error {
	if err := t.mustWrite(); err != nil {
		return err
	}
	if group == "" || m.Value == "" || len(group)+len(m.Value) > storage.MaxKeyLen {
		return storage.Errorf(storage.Invalid, "a membership needs a group and a member id")
	}
	const add = `INSERT INTO members (tid, grp, member, type, display) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (tid, grp, member) DO UPDATE SET type = excluded.type, display = excluded.display`
	args := []any{t.tid, []byte(group), []byte(m.Value), []byte(m.Type), []byte(m.Display)}
	if _, ok := t.prep.membership(group, m.Value); ok {
		// Its only answer is success: it goes with the next statement.
		t.q.hold(add, args...)
		t.prep.members[m.Value] = &m
		return nil
	}
	_, err := t.q.Exec(t.ctx, add, args...)
	return dbError(err)
}

func (t *tx) RemoveMember(group, member string) (bool, error) {
	if err := t.mustWrite(); err != nil {
		return false, err
	}
	const remove = "DELETE FROM members WHERE tid = $1 AND grp = $2 AND member = $3"
	if cur, ok := t.prep.membership(group, member); ok {
		if cur != nil {
			t.q.hold(remove, t.tid, []byte(group), []byte(member))
			t.prep.members[member] = nil
		}
		return cur != nil, nil
	}
	tag, err := t.q.Exec(t.ctx, remove, t.tid, []byte(group), []byte(member))
	if err != nil {
		return false, dbError(err)
	}
	return tag.RowsAffected() > 0, nil
}

func (t *tx) Member(group, member string) (storage.Member, bool, error) {
	if m, ok := t.prep.membership(group, member); ok {
		if m == nil {
			return storage.Member{}, false, nil
		}
		return *m, true, nil
	}
	var typ, display []byte
	err := t.q.QueryRow(t.ctx, "SELECT type, display FROM members WHERE tid = $1 AND grp = $2 AND member = $3",
		t.tid, []byte(group), []byte(member)).Scan(&typ, &display)
	if err == pgx.ErrNoRows {
		return storage.Member{}, false, nil
	}
	if err != nil {
		return storage.Member{}, false, dbError(err)
	}
	return storage.Member{Value: member, Type: string(typ), Display: string(display)}, true, nil
}

func (t *tx) Members(group string, fn func(storage.Member) error) error {
	after := []byte{}
	for chunk := firstChunk; ; chunk = min(4*chunk, maxChunk) {
		rows, err := t.q.Query(t.ctx, "SELECT member, type, display FROM members WHERE tid = $1 AND grp = $2 AND member > $3 ORDER BY member LIMIT $4",
			t.tid, []byte(group), after, chunk)
		if err != nil {
			return dbError(err)
		}
		ms, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (storage.Member, error) {
			var v, typ, display []byte
			err := row.Scan(&v, &typ, &display)
			return storage.Member{Value: string(v), Type: string(typ), Display: string(display)}, err
		})
		if err != nil {
			return dbError(err)
		}
		for _, m := range ms {
			if err := fn(m); err != nil {
				return err
			}
		}
		if len(ms) < chunk {
			return nil
		}
		after = []byte(ms[len(ms)-1].Value)
	}
}

func (t *tx) MemberOf(member string) ([]string, error) {
	if b, ok := t.fetched[member]; ok {
		return slices.Clone(b.groups), nil
	}
	return t.strings("SELECT grp FROM members WHERE tid = $1 AND member = $2 ORDER BY grp", t.tid, []byte(member))
}

// strings runs a query of one bytea column.
func (t *tx) strings(query string, args ...any) ([]string, error) {
	rows, err := t.q.Query(t.ctx, query, args...)
	if err != nil {
		return nil, dbError(err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (string, error) {
		var v []byte
		err := row.Scan(&v)
		return string(v), err
	})
	return out, dbError(err)
}

func (t *tx) Facts(user string) (storage.Facts, error) {
	var f storage.Facts
	b, fetched := t.fetched[user]
	raw := b.facts
	if r, ok := t.prep.factsOf(user); ok {
		raw, fetched = r, true
	} else if r, ok := t.factsRead[user]; ok {
		raw, fetched = r, true
	}
	if !fetched {
		err := t.q.QueryRow(t.ctx, "SELECT doc FROM facts WHERE tid = $1 AND uid = $2", t.tid, []byte(user)).Scan(&raw)
		if err == pgx.ErrNoRows {
			return f, nil
		}
		if err != nil {
			return f, dbError(err)
		}
	}
	if raw == nil {
		return f, nil
	}
	return f, json.Unmarshal(raw, &f)
}

func (t *tx) PutFacts(user string, f storage.Facts) error {
	if err := t.mustWrite(); err != nil {
		return err
	}
	t.prep = nil
	delete(t.factsRead, user)
	raw, err := json.Marshal(f)
	if err != nil {
		return err
	}
	_, err = t.q.Exec(t.ctx, `INSERT INTO facts (tid, uid, doc) VALUES ($1, $2, $3)
		ON CONFLICT (tid, uid) DO UPDATE SET doc = excluded.doc`, t.tid, []byte(user), raw)
	return dbError(err)
}

// AddParticipant: a participation row stays when the user leaves (current false), which is how
// a later assignment knows it is not the first.
func (t *tx) AddParticipant(campaign, user string) (added, first bool, err error) {
	if err := t.mustWrite(); err != nil {
		return false, false, err
	}
	if campaign == "" || len(campaign)+len(user) > storage.MaxKeyLen {
		return false, false, storage.Errorf(storage.Invalid, "a campaign id is 1 to %d bytes", storage.MaxKeyLen/2)
	}
	var existed bool
	err = t.q.QueryRow(t.ctx, `WITH old AS (SELECT current FROM participants WHERE tid = $1 AND uid = $2 AND campaign = $3),
		up AS (INSERT INTO participants (tid, uid, campaign, current) VALUES ($1, $2, $3, true)
			ON CONFLICT (tid, uid, campaign) DO UPDATE SET current = true WHERE NOT participants.current RETURNING 1)
		SELECT EXISTS (SELECT 1 FROM old), EXISTS (SELECT 1 FROM up)`, t.tid, []byte(user), []byte(campaign)).Scan(&existed, &added)
	if err != nil {
		return false, false, dbError(err)
	}
	return added, !existed, nil
}

func (t *tx) RemoveParticipant(campaign, user string) (bool, error) {
	if err := t.mustWrite(); err != nil {
		return false, err
	}
	tag, err := t.q.Exec(t.ctx, "UPDATE participants SET current = false WHERE tid = $1 AND uid = $2 AND campaign = $3 AND current",
		t.tid, []byte(user), []byte(campaign))
	if err != nil {
		return false, dbError(err)
	}
	return tag.RowsAffected() > 0, nil
}

func (t *tx) Participations(user string) ([]storage.Participation, error) {
	rows, err := t.q.Query(t.ctx, "SELECT campaign, current FROM participants WHERE tid = $1 AND uid = $2 ORDER BY campaign", t.tid, []byte(user))
	if err != nil {
		return nil, dbError(err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (storage.Participation, error) {
		var p storage.Participation
		var campaign []byte
		err := row.Scan(&campaign, &p.Current)
		p.Campaign = string(campaign)
		return p, err
	})
	return out, dbError(err)
}
