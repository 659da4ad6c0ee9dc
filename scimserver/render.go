package scimserver

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"

	"github.com/scimserver/scimserver/internal/jsonenc"
	"github.com/scimserver/scimserver/schemas"
	"github.com/scimserver/scimserver/storage"
)

// get reads one record of the kind; NotFound names the kind.
func (k *Kind) get(tx storage.Tx, id string) (storage.Record, error) {
	r, err := tx.Get(k.Collection, id)
	return r, found(err, k.Name)
}

// sortsByName reports whether ref is the kind's unique name attribute, so that a listing sorted
// by it can be read from its index in order.
func (k *Kind) sortsByName(ref attrRef) bool {
	return ref.urn == "" && ref.sub == nil && ref.attr.Name() == k.nameAttr && !ref.attr.CaseExact()
}

// render builds the SCIM representation of a record as a map. Related data (a user's groups, a
// group's members) is read only when the projection keeps it.
func (s *Service) render(tx storage.Tx, k *Kind, rec storage.Record, base string, p projection) (map[string]any, error) {
	m, err := storage.DecodeDoc(rec.Doc)
	if err != nil {
		return nil, err
	}
	if k.audited {
		f, err := tx.Facts(rec.ID)
		if err != nil {
			return nil, err
		}
		m[schemas.LifecycleURN] = lifecycleOf(f)
	}
	m["schemas"] = k.schemasOf(m)
	m["id"] = rec.ID
	m["meta"] = metaOf(k, k.location(base, rec.ID), rec.Created, rec.Modified, rec.Version)
	if p.wants(k.related) {
		related, err := s.related(tx, k, rec.ID, base)
		if err != nil {
			return nil, err
		}
		if len(related) > 0 {
			m[k.related] = related
		}
	}
	return p.apply(k, m), nil
}

// related reads what a record's representation shows of other records: a group's members, or
// the groups a record is a member of.
func (s *Service) related(tx storage.Tx, k *Kind, id, base string) ([]any, error) {
	if k.hasMembers {
		return s.membersOf(tx, id, base)
	}
	return s.groupsOf(tx, id, base)
}

func (s *Service) groupsOf(tx storage.Tx, id, base string) ([]any, error) {
	gids, err := tx.MemberOf(id)
	if err != nil {
		return nil, err
	}
	out := make([]any, 0, len(gids))
	for _, gid := range gids {
		g, err := s.groups.get(tx, gid)
		if err != nil {
			return nil, err
		}
		out = append(out, map[string]any{"value": gid, "$ref": s.groups.location(base, gid),
			"display": groupName(g), "type": "direct"})
	}
	return out, nil
}

// groupName reads a stored group's displayName.
func groupName(g storage.Record) string {
	doc, err := storage.DecodeDoc(g.Doc)
	if err != nil {
		return ""
	}
	return stringAt(doc, "displayName")
}

func (s *Service) membersOf(tx storage.Tx, gid, base string) ([]any, error) {
	var out []any
	err := tx.Members(gid, func(m storage.Member) error {
		el := map[string]any{"value": m.Value, "type": m.Type}
		if ref := s.memberRef(m.Type, m.Value, base); ref != "" {
			el["$ref"] = ref
		}
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
func (s *Service) renderRaw(tx storage.Tx, k *Kind, rec storage.Record, base string) ([]byte, error) {
	related, err := s.relatedJSON(tx, k, rec.ID, base)
	if err != nil {
		return nil, err
	}
	var f *storage.Facts
	if k.audited {
		if f, err = factsOf(tx, rec.ID); err != nil {
			return nil, err
		}
	}
	return appendRendered(k, rec, base, related, f), nil
}

// factsOf reads a record's facts, for appendRendered.
func factsOf(tx storage.Tx, id string) (*storage.Facts, error) {
	f, err := tx.Facts(id)
	return &f, err
}

// relatedJSON is related as the JSON array appendRendered splices in, nil when there is none. A
// group's members are written straight from the membership index: a large group's list is most
// of its representation.
func (s *Service) relatedJSON(tx storage.Tx, k *Kind, id, base string) ([]byte, error) {
	if !k.hasMembers {
		related, err := s.related(tx, k, id, base)
		if err != nil || len(related) == 0 {
			return nil, err
		}
		return appendValue(nil, related), nil
	}
	var b []byte
	err := tx.Members(id, func(m storage.Member) error {
		if b == nil {
			b = append(b, '[')
		} else {
			b = append(b, ',')
		}
		b = appendMember(b, s.kindNamed(m.Type), m, base)
		return nil
	})
	if b != nil {
		b = append(b, ']')
	}
	return b, err
}

// appendMember appends what membersOf makes of m, as json.Marshal writes it (keys in byte order).
func appendMember(b []byte, k *Kind, m storage.Member, base string) []byte {
	b = append(b, '{')
	if k != nil {
		b = append(b, `"$ref":`...)
		b = jsonenc.AppendString(b, k.location(base, m.Value))
		b = append(b, ',')
	}
	if m.Display != "" {
		b = append(b, `"display":`...)
		b = jsonenc.AppendString(b, m.Display)
		b = append(b, ',')
	}
	b = append(b, `"type":`...)
	b = jsonenc.AppendString(b, m.Type)
	b = append(b, `,"value":`...)
	b = jsonenc.AppendString(b, m.Value)
	return append(b, '}')
}

// appendRendered is renderRaw once the related records (as relatedJSON writes them) and the
// facts (nil for a kind without) are known.
func appendRendered(k *Kind, rec storage.Record, base string, related []byte, f *storage.Facts) []byte {
	b := make([]byte, 0, len(rec.Doc)+len(related)+640)
	b = append(b, `{"schemas":["`...)
	b = append(b, k.core.ID...)
	b = append(b, '"')
	for _, e := range k.extensions {
		if (k.audited && e.ID == schemas.LifecycleURN) || bytes.Contains(rec.Doc, []byte(`"`+e.ID+`":{`)) {
			b = append(b, `,"`...)
			b = append(b, e.ID...)
			b = append(b, '"')
		}
	}
	b = append(b, `],"id":`...)
	b = strconv.AppendQuote(b, rec.ID)
	b = append(b, `,"meta":{"resourceType":"`...)
	b = append(b, k.Name...)
	b = append(b, `","created":"`...)
	b = rec.Created.AppendFormat(b, timeFormat)
	b = append(b, `","lastModified":"`...)
	b = rec.Modified.AppendFormat(b, timeFormat)
	b = append(b, `","location":`...)
	b = jsonenc.AppendString(b, k.location(base, rec.ID))
	b = append(b, `,"version":`...)
	b = jsonenc.AppendString(b, etag(rec.Version))
	b = append(b, '}')
	if len(rec.Doc) > 2 {
		b = append(b, ',')
		b = append(b, rec.Doc[1:len(rec.Doc)-1]...)
	}
	if len(related) > 0 {
		b = append(b, `,"`...)
		b = append(b, k.related...)
		b = append(b, `":`...)
		b = append(b, related...)
	}
	if f != nil {
		b = append(b, `,"`+schemas.LifecycleURN+`":`...)
		b = appendValue(b, lifecycleOf(*f))
	}
	return append(b, '}')
}

// renderBytes renders a record as JSON, taking the raw path when nothing is projected.
func (s *Service) renderBytes(tx storage.Tx, k *Kind, rec storage.Record, base string, p projection) ([]byte, error) {
	if p.empty() {
		return s.renderRaw(tx, k, rec, base)
	}
	m, err := s.render(tx, k, rec, base, p)
	if err != nil {
		return nil, err
	}
	return json.Marshal(m)
}

// appendValue appends a server-built value — objects, lists, strings, booleans and ints, as the
// lifecycle extension and a user's groups are — as json.Marshal writes it (object keys in byte
// order), without its reflection; anything else goes through json.Marshal.
func appendValue(b []byte, v any) []byte {
	b, _ = appendEncoded(b, v)
	return b
}

// encodeDoc encodes a document to store as json.Marshal does, without its reflection for what
// documents are made of (objects, lists, strings, booleans); its numbers and anything else go
// through json.Marshal, whose error it returns.
func encodeDoc(doc map[string]any) ([]byte, error) {
	return appendEncoded(make([]byte, 0, 512), doc)
}

// appendEncoded is appendValue, reporting a value json.Marshal refused (written as null).
func appendEncoded(b []byte, v any) ([]byte, error) {
	var err error
	switch v := v.(type) {
	case string:
		return jsonenc.AppendString(b, v), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case int:
		return strconv.AppendInt(b, int64(v), 10), nil
	case []any:
		if v == nil {
			return append(b, "null"...), nil
		}
		b = append(b, '[')
		for i, el := range v {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendEncoded(b, el); err != nil {
				return b, err
			}
		}
		return append(b, ']'), nil
	case map[string]any:
		if v == nil {
			return append(b, "null"...), nil
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsonenc.AppendString(b, k)
			b = append(b, ':')
			if b, err = appendEncoded(b, v[k]); err != nil {
				return b, err
			}
		}
		return append(b, '}'), nil
	}
	return appendJSON(b, v)
}

// appendJSON appends v's JSON encoding, or null with json.Marshal's error.
func appendJSON(b []byte, v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return append(b, "null"...), err
	}
	return append(b, raw...), nil
}
