package patch

import (
	"cmp"
	"slices"
	"strings"

	"github.com/elimity-com/scim/schema"
	filter "github.com/scim2/filter-parser/v2"

	"github.com/scimserver/scimserver/scimserver/compare"
)

// Member is one group member from a PATCH value.
type Member struct {
	Value   string // the member's id, never empty
	Type    string // "User", "Group" or ""
	Display string
	Ref     string // "$ref"
}

// element returns m as the member object that value filters are evaluated against.
func (m Member) element() map[string]any {
	e := make(map[string]any, 4)
	e["value"] = m.Value
	for _, kv := range [...]struct{ k, v string }{{"type", m.Type}, {"display", m.Display}, {"$ref", m.Ref}} {
		if kv.v != "" {
			e[kv.k] = kv.v
		}
	}
	return e
}

// MemberChange is the net effect of a PATCH's operations on a group's members, which are not
// part of the document. The new membership is Add when ReplaceAll is set; otherwise it is the
// current one, emptied if RemoveAll is set, without the ids in Remove and the members matching
// a RemoveWhere filter, plus Add. Operation order is already folded in: an id is never in both
// Add and Remove, and Add holds no member that a later RemoveWhere filter matches.
//
// A member given without a display keeps the one it has, and its type is its kind's: where the
// outcome turns on those and the fold cannot know them (Replay set), the operations are to be
// replayed against the group's members instead (see Replay), and the rest of the change says
// nothing.
type MemberChange struct {
	Replay      bool                // the outcome needs the group's members: replay the operations
	ReplaceAll  bool                // replace the whole list with Add (op replace on "members" without filter)
	RemoveAll   bool                // remove path "members" with no value: clear the group
	Add         []Member            // in order, de-duplicated by Value
	Remove      []string            // member ids (Value) to remove
	RemoveWhere []filter.Expression // members[<filter>] removals that are not simple `value eq "x"` (evaluated against each member with Selecting)
	Refs        bool                // a member filter may compare $ref: members need the reference a read shows

	members *schema.CoreAttribute // the attribute the operations target
}

// Selecting returns what tells whether a filter of c (RemoveWhere) selects member m: the
// comparison the fold and Replay make, with m's object built once for every filter. c must come
// from Members.
func (c MemberChange) Selecting(m Member) func(filter.Expression) bool {
	e := m.element()
	return func(f filter.Expression) bool { return matches(f, *c.members, e) }
}

// maxPendingMatches bounds the comparisons that member filters other than on the id make with
// the members the same PATCH added before them: each such filter is evaluated against every
// pending add, and a 1 MiB body could otherwise ask for some 10⁸.
const maxPendingMatches = 1_000_000

// Members folds the operations of ops that target a group's members into their net change.
// It depends on ops alone, not on the group, so it can run before the group is read. Errors are
// *Error.
func Members(ops []Operation) (MemberChange, error) {
	var ms memberState
	var attr *schema.CoreAttribute
	var replay replayCost
	refs := false
	for _, op := range ops {
		if !op.t.isMembers() {
			continue
		}
		attr = op.t.attr
		refs = refs || op.t.filter != nil && mentions(op.t.filter, "$ref")
		if ms.change.Replay {
			replay.count(op) // the rest of the change says nothing: no more to fold
			continue
		}
		if err := ms.apply(op); err != nil {
			return MemberChange{}, err.in(op.where.String())
		}
		if ms.change.Replay {
			replay.start(ms.change.Add, ms.matches)
			replay.count(op)
		}
	}
	c := ms.result()
	if c.Replay && replay.over != nil {
		return MemberChange{}, pendingMatchesError().in(replay.over.String())
	}
	c.members, c.Refs = attr, refs
	return c, nil
}

func pendingMatchesError() *Error {
	return errorf(tooMany, "the members added before this filter would be compared with filters more than %d times; remove members by value, or split the request", maxPendingMatches)
}

// replayCost bounds a replay as the fold bounds itself (maxPendingMatches), before the group is
// read. The fold's count stands up to the operation that needs the replay; from there each
// filter on something other than the id counts a comparison with every member added since the
// fold's pending ones and not removed by id (a member a filter removes still counts: only the
// group would tell).
type replayCost struct {
	pending map[string]struct{}
	matches int
	over    *place // the operation past the bound, nil while within it
}

// start takes over from the fold: add are its pending members, matches its comparisons.
func (r *replayCost) start(add []Member, matches int) {
	r.pending, r.matches = make(map[string]struct{}, len(add)), matches
	for _, m := range add {
		r.pending[m.Value] = struct{}{}
	}
}

func (r *replayCost) count(op Operation) {
	switch {
	case op.Op == opAdd || op.Op == opReplace:
		if op.Op == opReplace {
			clear(r.pending)
		}
		for _, m := range op.members {
			r.pending[m.Value] = struct{}{}
		}
	case op.t.filter != nil:
		if ids, ok := memberIDs(op.t.filter); ok {
			for _, id := range ids {
				delete(r.pending, id)
			}
			return
		}
		if r.matches += len(r.pending) * comparisons(op.t.filter); r.matches > maxPendingMatches && r.over == nil {
			r.over = &op.where
		}
	case op.hasValue:
		for _, m := range op.members {
			delete(r.pending, m.Value)
		}
	default:
		clear(r.pending)
	}
}

// memberState accumulates the MemberChange of a PATCH in operation order. It knows where each
// pending add is and which removals are pending, so that folding a PATCH of n members costs
// O(n), not O(n²): a body can list thousands of members.
type memberState struct {
	change   MemberChange
	addAt    map[string]int      // each change.Add entry's index, by Value; nil: to be built
	removing map[string]struct{} // the ids in change.Remove
	matches  int                 // comparisons of filters with pending adds so far
}

// reset starts the change again from c (a replace or a clear).
func (ms *memberState) reset(c MemberChange) {
	ms.change, ms.addAt, ms.removing = c, nil, nil
}

// result returns the change with empty lists as nil.
func (ms *memberState) result() MemberChange {
	c := ms.change
	c.Add, c.Remove, c.RemoveWhere = nilIfEmpty(c.Add), nilIfEmpty(c.Remove), nilIfEmpty(c.RemoveWhere)
	return c
}

func nilIfEmpty[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}

func (ms *memberState) apply(op Operation) *Error {
	c := &ms.change
	switch {
	case op.Op == opAdd:
		// After a replace the writer keeps a listed member's stored display, which an earlier
		// operation may have dropped or changed.
		if c.ReplaceAll && slices.ContainsFunc(op.members, func(m Member) bool { _, pending := ms.pending(m.Value); return m.Display == "" && !pending }) {
			c.Replay = true
			break
		}
		ms.add(op.members)
	case op.Op == opReplace:
		// A member listed without a display keeps the one it has: one given earlier in the
		// PATCH, which the reset below forgets, is carried over; where an earlier operation may
		// have changed what the group holds, the writer's rule (keep the stored display) would
		// not tell it.
		members, given := op.members, false
		seen := make(map[string]bool, len(members))
		for i, m := range op.members {
			first := !seen[m.Value]
			seen[m.Value] = true
			if !first || m.Display != "" {
				continue // a later occurrence takes the display of the earlier (add)
			}
			j, pending := ms.pending(m.Value)
			_, removed := ms.removing[m.Value]
			switch {
			case pending && c.Add[j].Display != "":
				if !given {
					members, given = slices.Clone(members), true
				}
				members[i].Display = c.Add[j].Display
			case pending || removed || c.ReplaceAll || c.RemoveAll || len(c.RemoveWhere) > 0:
				c.Replay = true
			}
		}
		ms.reset(MemberChange{ReplaceAll: true, Replay: c.Replay})
		ms.add(members)
	case op.t.filter != nil:
		if ids, ok := memberIDs(op.t.filter); ok {
			ms.remove(ids)
			break
		}
		// A pending member is matched by the display it will have, which the group tells when
		// none was given, and by its kind's type and the reference the server gives it, whatever
		// type and $ref the client sent.
		display, kind := mentions(op.t.filter, "display"), mentions(op.t.filter, "type") || mentions(op.t.filter, "$ref")
		if len(c.Add) > 0 && kind || slices.ContainsFunc(c.Add, func(m Member) bool { return display && m.Display == "" }) {
			c.Replay = true
			break
		}
		if ms.matches += len(c.Add) * comparisons(op.t.filter); ms.matches > maxPendingMatches {
			return pendingMatchesError()
		}
		var gone []string
		c.Add = slices.DeleteFunc(c.Add, func(m Member) bool {
			match := matches(op.t.filter, *op.t.attr, m.element())
			if match && m.Display != "" {
				gone = append(gone, m.Value)
			}
			return match
		})
		ms.addAt = nil
		// Matched by the display it was given, a member is gone, whatever it was before the
		// PATCH. One given without a display keeps the one it has, and the match of the filter
		// against the group's members (RemoveWhere) judges it by that.
		ms.remove(gone)
		if !c.ReplaceAll && !c.RemoveAll {
			c.RemoveWhere = append(c.RemoveWhere, op.t.filter)
		}
	case op.hasValue: // Entra's legacy removal: only the listed members go
		ids := make([]string, len(op.members))
		for i, m := range op.members {
			ids[i] = m.Value
		}
		ms.remove(ids)
	default:
		ms.reset(MemberChange{RemoveAll: true})
	}
	return nil
}

// Replay applies the member operations of ops one by one to members, a group's members, and
// returns the members they leave: the exact reading of ops, for a change whose fold needs the
// group (MemberChange.Replay). members carry the type and $ref the server gives them, and kindOf
// gives those of a member the operations add (its kind's type, and its reference), whatever the
// client sent; spend is called for each member given and each comparison of a member with a
// filter, and its error ends the replay.
func Replay(ops []Operation, members []Member, kindOf func(id string) (typ, ref string), spend func() error) ([]Member, error) {
	cur := newMemberList(members)
	for _, op := range ops {
		if !op.t.isMembers() {
			continue
		}
		switch {
		case op.Op == opAdd:
			if err := cur.add(op.members, nil, kindOf, spend); err != nil {
				return nil, err
			}
		case op.Op == opReplace:
			was := cur
			cur = newMemberList(nil)
			if err := cur.add(op.members, was, kindOf, spend); err != nil {
				return nil, err
			}
		case op.t.filter != nil:
			if ids, ok := memberIDs(op.t.filter); ok {
				for _, id := range ids {
					cur.remove(id)
				}
				break
			}
			for _, id := range slices.Clone(cur.order) {
				m, ok := cur.byID[id]
				if !ok {
					continue
				}
				if err := spend(); err != nil {
					return nil, err
				}
				if matches(op.t.filter, *op.t.attr, cur.element(m)) {
					cur.remove(id)
				}
			}
		case op.hasValue:
			for _, m := range op.members {
				cur.remove(m.Value)
			}
		default:
			cur = newMemberList(nil)
		}
	}
	out := make([]Member, 0, len(cur.byID))
	for _, id := range cur.order {
		if m, ok := cur.byID[id]; ok {
			out = append(out, m)
		}
	}
	return out, nil
}

// memberList is a group's members during a replay, in the order they first joined.
type memberList struct {
	byID  map[string]Member
	order []string // each id that joined, once; those removed since are not in byID
	ever  map[string]bool
	elems map[string]map[string]any // each member's object for filters, built once (element)
}

func newMemberList(members []Member) *memberList {
	l := &memberList{byID: make(map[string]Member, len(members)), ever: make(map[string]bool, len(members)), elems: map[string]map[string]any{}}
	for _, m := range members {
		l.byID[m.Value] = m
		l.ever[m.Value] = true
		l.order = append(l.order, m.Value)
	}
	return l
}

// add adds or updates members; one given without a display keeps the one it has here or, for a
// replace, had in was.
func (l *memberList) add(members []Member, was *memberList, kindOf func(string) (string, string), spend func() error) error {
	for _, m := range members {
		if err := spend(); err != nil {
			return err
		}
		m.Type, m.Ref = kindOf(m.Value)
		if m.Display == "" {
			if old, ok := l.byID[m.Value]; ok {
				m.Display = old.Display
			} else if was != nil {
				m.Display = was.byID[m.Value].Display
			}
		}
		if !l.ever[m.Value] {
			l.ever[m.Value] = true
			l.order = append(l.order, m.Value)
		}
		l.byID[m.Value] = m
		delete(l.elems, m.Value)
	}
	return nil
}

func (l *memberList) remove(id string) { delete(l.byID, id) }

// element returns m's object for filters, built the first time a filter meets m as it is now.
func (l *memberList) element(m Member) map[string]any {
	e, ok := l.elems[m.Value]
	if !ok {
		e = m.element()
		l.elems[m.Value] = e
	}
	return e
}

// index builds addAt when it is not there.
func (ms *memberState) index() {
	if ms.addAt == nil {
		ms.addAt = make(map[string]int, len(ms.change.Add))
		for i, a := range ms.change.Add {
			ms.addAt[a.Value] = i
		}
	}
}

// pending returns the index in change.Add of the pending add of id.
func (ms *memberState) pending(id string) (int, bool) {
	ms.index()
	i, ok := ms.addAt[id]
	return i, ok
}

// eachComparison calls fn with the attribute name of every comparison of e ("" for a shape it
// does not look into).
func eachComparison(e filter.Expression, fn func(attr string)) {
	switch e := e.(type) {
	case *filter.LogicalExpression:
		eachComparison(e.Left, fn)
		eachComparison(e.Right, fn)
	case *filter.NotExpression:
		eachComparison(e.Expression, fn)
	case *filter.ValuePath:
		eachComparison(e.ValueFilter, fn)
	case *filter.AttributeExpression:
		fn(e.AttributePath.AttributeName)
	default:
		fn("")
	}
}

// mentions reports whether e may compare the sub-attribute name.
func mentions(e filter.Expression, name string) bool {
	found := false
	eachComparison(e, func(attr string) { found = found || attr == "" || strings.EqualFold(attr, name) })
	return found
}

// comparisons counts the comparisons of e: the work of evaluating it once.
func comparisons(e filter.Expression) int {
	n := 0
	eachComparison(e, func(string) { n++ })
	return n
}

func (ms *memberState) add(members []Member) {
	c := &ms.change
	ms.index()
	unremove := false
	for _, m := range members {
		if _, ok := ms.removing[m.Value]; ok {
			delete(ms.removing, m.Value)
			unremove = true
			// Back without a display, it has none, though the writer would keep the stored one.
			c.Replay = c.Replay || m.Display == ""
		}
		if i, ok := ms.addAt[m.Value]; ok {
			// The later occurrence carries the newer display name; given none, the member
			// keeps the one it has, as a member already in the group does.
			m.Display = cmp.Or(m.Display, c.Add[i].Display)
			c.Add[i] = m
		} else {
			ms.addAt[m.Value] = len(c.Add)
			c.Add = append(c.Add, m)
		}
	}
	if unremove {
		c.Remove = slices.DeleteFunc(c.Remove, func(id string) bool { _, ok := ms.removing[id]; return !ok })
	}
}

func (ms *memberState) remove(ids []string) {
	c := &ms.change
	gone := make(map[string]struct{}, len(ids))
	for _, id := range ids {
		gone[id] = struct{}{}
	}
	if len(c.Add) > 0 {
		c.Add = slices.DeleteFunc(c.Add, func(m Member) bool { _, ok := gone[m.Value]; return ok })
		ms.addAt = nil
	}
	// After a replace or clear the current members no longer matter.
	if c.ReplaceAll || c.RemoveAll {
		return
	}
	if ms.removing == nil {
		ms.removing = make(map[string]struct{}, len(ids))
	}
	for _, id := range ids {
		if _, ok := ms.removing[id]; !ok {
			ms.removing[id] = struct{}{}
			c.Remove = append(c.Remove, id)
		}
	}
}

// memberIDs returns the ids of a filter of the form `value eq "a"` or
// `value eq "a" or value eq "b"`, the shapes Okta and Entra send to remove members.
func memberIDs(e filter.Expression) ([]string, bool) {
	switch e := e.(type) {
	case *filter.AttributeExpression:
		id, ok := e.CompareValue.(string)
		return []string{id}, ok && e.Operator == filter.EQ && e.AttributePath.AttributeName == "value"
	case *filter.LogicalExpression:
		if e.Operator != filter.OR {
			return nil, false
		}
		left, ok := memberIDs(e.Left)
		if !ok {
			return nil, false
		}
		right, ok := memberIDs(e.Right)
		return append(left, right...), ok
	}
	return nil, false
}

// ParseMembers reads a group's members from a POST or PUT body or a PATCH value: one member
// object or an array of them; null or [] is no member. Keys other than value, display, type and
// $ref are ignored, as elsewhere in a body (Microsoft's test collection sends displayName).
// Errors are *Error.
func ParseMembers(v any) ([]Member, error) {
	members, err := parseMembers(v)
	if err != nil {
		return nil, err
	}
	return members, nil
}

func parseMembers(v any) ([]Member, *Error) {
	if compare.Unassigned(v) {
		return nil, nil
	}
	items, ok := v.([]any)
	if !ok {
		items = []any{v}
	}
	members := make([]Member, 0, len(items))
	for _, item := range items {
		m, err := parseMember(item)
		if err != nil {
			return nil, err
		}
		members = append(members, m)
	}
	return members, nil
}

func parseMember(v any) (Member, *Error) {
	obj, ok := v.(map[string]any)
	if !ok {
		return Member{}, errorf(invalidValue, "each member must be an object")
	}
	var m Member
	seen := map[string]bool{}
	for k, raw := range obj {
		key := strings.ToLower(k)
		var field *string
		switch key {
		case "value":
			field = &m.Value
		case "display":
			field = &m.Display
		case "$ref": // Entra sends "$ref": null
			field = &m.Ref
		case "type":
			field = &m.Type
		default:
			continue
		}
		if seen[key] {
			return Member{}, errorf(invalidSyntax, "a member gives %s twice (the keys differ only in case)", safeName(key))
		}
		seen[key] = true
		s, isString := raw.(string)
		if !isString && raw != nil {
			return Member{}, errorf(invalidValue, "member attribute %s must be a string", safeName(k))
		}
		*field = s
	}
	switch {
	case strings.EqualFold(m.Type, "User"):
		m.Type = "User"
	case strings.EqualFold(m.Type, "Group"):
		m.Type = "Group"
	case m.Type != "":
		return Member{}, errorf(invalidValue, "member type must be User or Group")
	}
	if m.Value == "" {
		return Member{}, errorf(invalidValue, "each member needs a non-empty string value")
	}
	return m, nil
}
