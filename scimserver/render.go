package scimserver

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/scimserver/scimserver/schemas"
	"github.com/scimserver/scimserver/storage"
)

// record is what users and groups have in common once read from the store.
type record struct {
	id       string
	doc      json.RawMessage
	created  time.Time
	modified time.Time
	version  uint64
}

func userRecord(u storage.User) record {
	return record{id: u.ID, doc: u.Doc, created: u.Created, modified: u.Modified, version: u.Version}
}

func groupRecord(g storage.Group) record {
	return record{id: g.ID, doc: g.Doc, created: g.Created, modified: g.Modified, version: g.Version}
}

// baseURL is the SCIM root as clients reach it: --base-url, or this request's scheme and host.
func (s *Server) baseURL(r *http.Request) string {
	if s.opts.BaseURL != "" {
		return s.opts.BaseURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + "/scim/v2"
}

func (rt *resourceType) location(base, id string) string {
	return base + rt.endpoint + "/" + url.PathEscape(id)
}

// get reads one record of the resource type.
func (rt *resourceType) get(tx *storage.Tx, id string) (record, error) {
	if rt.name == "User" {
		u, err := tx.User(id)
		return userRecord(u), err
	}
	g, err := tx.Group(id)
	return groupRecord(g), err
}

// scan walks the records of the resource type in id order, after the id after and skip more.
func (rt *resourceType) scan(tx *storage.Tx, after string, skip int, fn func(record) (bool, error)) error {
	if rt.name == "User" {
		return tx.ScanUsers(after, skip, func(u storage.User) (bool, error) { return fn(userRecord(u)) })
	}
	return tx.ScanGroups(after, skip, func(g storage.Group) (bool, error) { return fn(groupRecord(g)) })
}

// nameAttr is the attribute the resource type keeps a unique, case-insensitive index of.
func (rt *resourceType) nameAttr() string {
	if rt.name == "User" {
		return "userName"
	}
	return "displayName"
}

// sortsByName reports whether ref is the indexed name attribute, so that a listing sorted by it
// can be read from the index in order.
func (rt *resourceType) sortsByName(ref attrRef) bool {
	return ref.urn == "" && ref.sub == nil && ref.attr.Name() == rt.nameAttr() && !ref.attr.CaseExact()
}

// scanNames walks the resource type's ids in name order (see storage.Tx.ScanUserNames).
func (rt *resourceType) scanNames(tx *storage.Tx, descending bool, skip int, fn func(id string) bool) {
	if rt.name == "User" {
		tx.ScanUserNames(descending, skip, fn)
		return
	}
	tx.ScanGroupNames(descending, skip, fn)
}

// position returns where scan must start to reach the record at 0-based position pos.
func (rt *resourceType) position(tx *storage.Tx, pos int) (after string, skip int) {
	if rt.name == "User" {
		return tx.UserPosition(pos)
	}
	return tx.GroupPosition(pos)
}

// before returns the id just before id in the resource type's id order.
func (rt *resourceType) before(tx *storage.Tx, id string) string {
	if rt.name == "User" {
		return tx.UserBefore(id)
	}
	return tx.GroupBefore(id)
}

// deletes is the order generation of the resource type (see storage.Tx.UserDeletes).
func (rt *resourceType) deletes(tx *storage.Tx) uint64 {
	if rt.name == "User" {
		return tx.UserDeletes()
	}
	return tx.GroupDeletes()
}

func (rt *resourceType) count(tx *storage.Tx) int {
	if rt.name == "User" {
		return tx.CountUsers()
	}
	return tx.CountGroups()
}

// render builds the SCIM representation of a record. Related data (a user's groups, a group's
// members) is read only when the projection keeps it.
func (s *Server) render(tx *storage.Tx, rt *resourceType, rec record, base string, p projection) (map[string]any, error) {
	m, err := decodeDoc(rec.doc)
	if err != nil {
		return nil, err
	}
	if rt.name == "User" {
		f, err := tx.Facts(rec.id)
		if err != nil {
			return nil, err
		}
		m[schemas.LifecycleURN] = lifecycleOf(f)
	}
	m["schemas"] = rt.schemasOf(m)
	m["id"] = rec.id
	m["meta"] = metaOf(rt, rt.location(base, rec.id), rec.created, rec.modified, rec.version)
	name := "groups"
	if rt.name == "Group" {
		name = "members"
	}
	if p.wants(name) {
		_, related, err := s.related(tx, rt, rec.id, base)
		if err != nil {
			return nil, err
		}
		if len(related) > 0 {
			m[name] = related
		}
	}
	return p.apply(rt, m), nil
}

func (s *Server) groupsOf(tx *storage.Tx, uid, base string) ([]any, error) {
	gids, err := tx.GroupsOf(uid)
	if err != nil {
		return nil, err
	}
	out := make([]any, 0, len(gids))
	for _, gid := range gids {
		g, err := tx.Group(gid)
		if err != nil {
			return nil, err
		}
		out = append(out, map[string]any{"value": gid, "$ref": s.groups.location(base, gid),
			"display": g.Keys.DisplayName, "type": "direct"})
	}
	return out, nil
}

func (s *Server) membersOf(tx *storage.Tx, gid, base string) ([]any, error) {
	var out []any
	err := tx.Members(gid, func(m storage.Member) error {
		rt := s.users
		if m.Type == "Group" {
			rt = s.groups
		}
		el := map[string]any{"value": m.Value, "$ref": rt.location(base, m.Value), "type": m.Type}
		if m.Display != "" {
			el["display"] = m.Display
		}
		out = append(out, el)
		return nil
	})
	return out, err
}

// renderRaw builds the full SCIM JSON of a record without decoding its stored document: the
// document's members are spliced between the attributes the server adds. It produces what
// render produces with no projection, and is the path every plain read takes.
func (s *Server) renderRaw(tx *storage.Tx, rt *resourceType, rec record, base string) ([]byte, error) {
	b := make([]byte, 0, len(rec.doc)+640)
	b = append(b, `{"schemas":["`...)
	b = append(b, rt.core.ID...)
	b = append(b, '"')
	for _, e := range rt.extensions {
		if e.ID == schemas.LifecycleURN || bytes.Contains(rec.doc, []byte(`"`+e.ID+`":{`)) {
			b = append(b, `,"`...)
			b = append(b, e.ID...)
			b = append(b, '"')
		}
	}
	b = append(b, `],"id":`...)
	b = strconv.AppendQuote(b, rec.id)
	b = append(b, `,"meta":{"resourceType":"`...)
	b = append(b, rt.name...)
	b = append(b, `","created":"`...)
	b = rec.created.AppendFormat(b, timeFormat)
	b = append(b, `","lastModified":"`...)
	b = rec.modified.AppendFormat(b, timeFormat)
	b = append(b, `","location":`...)
	b = appendJSON(b, rt.location(base, rec.id))
	b = append(b, `,"version":`...)
	b = appendJSON(b, etag(rec.version))
	b = append(b, '}')
	if len(rec.doc) > 2 {
		b = append(b, ',')
		b = append(b, rec.doc[1:len(rec.doc)-1]...)
	}
	name, related, err := s.related(tx, rt, rec.id, base)
	if err != nil {
		return nil, err
	}
	if len(related) > 0 {
		b = append(b, `,"`...)
		b = append(b, name...)
		b = append(b, `":`...)
		b = appendJSON(b, related)
	}
	if rt.name == "User" {
		f, err := tx.Facts(rec.id)
		if err != nil {
			return nil, err
		}
		b = append(b, `,"`+schemas.LifecycleURN+`":`...)
		b = appendJSON(b, lifecycleOf(f))
	}
	return append(b, '}'), nil
}

// related reads what a record's representation shows of other records: a user's groups, a
// group's members.
func (s *Server) related(tx *storage.Tx, rt *resourceType, id, base string) (string, []any, error) {
	if rt.name == "User" {
		groups, err := s.groupsOf(tx, id, base)
		return "groups", groups, err
	}
	members, err := s.membersOf(tx, id, base)
	return "members", members, err
}

// renderBytes renders a record as JSON, taking the raw path when nothing is projected.
func (s *Server) renderBytes(tx *storage.Tx, rt *resourceType, rec record, base string, p projection) ([]byte, error) {
	if p.empty() {
		return s.renderRaw(tx, rt, rec, base)
	}
	m, err := s.render(tx, rt, rec, base, p)
	if err != nil {
		return nil, err
	}
	return json.Marshal(m)
}

// appendJSON appends v's JSON encoding; v is always server-built and encodable.
func appendJSON(b []byte, v any) []byte {
	raw, err := json.Marshal(v)
	if err != nil {
		return append(b, "null"...)
	}
	return append(b, raw...)
}
