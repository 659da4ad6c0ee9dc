package patch

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	filter "github.com/scim2/filter-parser/v2"
)

func TestMembers(t *testing.T) {
	tests := []struct {
		name        string
		body        string
		want        MemberChange
		removeWhere []string // RemoveWhere rendered with fmt
		changed     []string
	}{
		{
			name: "okta membership update: remove by filter, add, full replace",
			body: body(
				`{"op":"remove","path":"members[value eq \"89bb1940-b905-4575-9e7f-6f887cfb368e\"]"}`,
				`{"op":"add","path":"members","value":[{"value":"23a35c27-23d3-4c03-b4c5-6443c09e7173","display":"test.user@okta.local"}]}`),
			want: MemberChange{
				Add:    []Member{{Value: "23a35c27-23d3-4c03-b4c5-6443c09e7173", Display: "test.user@okta.local"}},
				Remove: []string{"89bb1940-b905-4575-9e7f-6f887cfb368e"},
			},
			changed: []string{"members"},
		},
		{
			name: "microsoft's test collection: a member key the schema lacks is ignored",
			body: body(`{"op":"add","path":"members","value":[{"displayName":"new User","value":"u1","operation":7}]}`),
			want: MemberChange{Add: []Member{{Value: "u1"}}},
		},
		{
			name: "okta full push replaces the list",
			body: body(`{"op":"replace","path":"members","value":[{"value":"u1","display":"a"},{"value":"u2","display":"b"}]}`),
			want: MemberChange{ReplaceAll: true, Add: []Member{{Value: "u1", Display: "a"}, {Value: "u2", Display: "b"}}},
		},
		{
			name:    "okta rename with id in the value, sent with membership updates",
			body:    body(`{"op":"replace","value":{"id":"abf4dd94-a4c0-4f67-89c9-76b03340cb9b","displayName":"Test SCIMv2"}}`, `{"op":"add","path":"members","value":[{"value":"u1"}]}`),
			want:    MemberChange{Add: []Member{{Value: "u1"}}},
			changed: []string{"displayName", "members"},
		},
		{
			name: "entra legacy removal removes only the listed members",
			body: body(`{"op":"Remove","path":"members","value":[{"$ref":null,"value":"f648f8d5ea4e4cd38e9c"}]}`),
			want: MemberChange{Remove: []string{"f648f8d5ea4e4cd38e9c"}},
		},
		{
			name: "entra legacy removal with an empty list removes nothing",
			body: body(`{"op":"Remove","path":"members","value":[]}`),
			want: MemberChange{},
		},
		{
			name: "entra flag removal by filter",
			body: body(`{"op":"remove","path":"members[value eq \"7f4b\"]"}`),
			want: MemberChange{Remove: []string{"7f4b"}},
		},
		{
			name: "removal of several ids by an or filter",
			body: body(`{"op":"remove","path":"members[value eq \"a\" or VALUE eq \"b\"]"}`, `{"op":"remove","path":"members[value eq \"c\" or value eq \"a\"]"}`),
			want: MemberChange{Remove: []string{"a", "b", "c"}},
		},
		{
			name: "entra adds several members with $ref null",
			body: body(`{"op":"Add","path":"members","value":[{"$ref":null,"value":"a"},{"$ref":null,"value":"b"}]}`, `{"op":"Add","path":"members","value":[{"$ref":null,"value":"c"}]}`),
			want: MemberChange{Add: []Member{{Value: "a"}, {Value: "b"}, {Value: "c"}}},
		},
		{
			name: "entra captured update: rename, add and remove the same member",
			body: body(
				`{"op":"Replace","path":"displayName","value":"1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"}`,
				`{"op":"Add","path":"members","value":[{"$ref":null,"value":"f648f8d5ea4e4cd38e9c"}]}`,
				`{"op":"Remove","path":"members","value":[{"$ref":null,"value":"f648f8d5ea4e4cd38e9c"}]}`),
			want:    MemberChange{Remove: []string{"f648f8d5ea4e4cd38e9c"}},
			changed: []string{"displayName", "members"},
		},
		{
			name: "remove then add the same member leaves it present",
			body: body(`{"op":"remove","path":"members[value eq \"u1\"]"}`, `{"op":"add","path":"members","value":[{"value":"u1"}]}`),
			want: MemberChange{Replay: true}, // back without the display it had
		},
		{
			name: "remove path members clears the group",
			body: body(`{"op":"add","path":"members","value":[{"value":"u1"}]}`, `{"op":"remove","path":"members"}`),
			want: MemberChange{RemoveAll: true},
		},
		{
			name: "remove with value null also clears the group",
			body: body(`{"op":"remove","path":"members","value":null}`, `{"op":"add","path":"members","value":{"value":"u2","type":"user"}}`),
			want: MemberChange{RemoveAll: true, Add: []Member{{Value: "u2", Type: "User"}}},
		},
		{
			name: "adds are de-duplicated by value, the later one wins in place",
			body: body(`{"op":"add","path":"members","value":[{"value":"u1","display":"old"},{"value":"u2"},{"value":"u1","display":"new","type":"GROUP","$ref":"https://x/Groups/u1"}]}`),
			want: MemberChange{Add: []Member{{Value: "u1", Display: "new", Type: "Group", Ref: "https://x/Groups/u1"}, {Value: "u2"}}},
		},
		{
			name: "removals after a replace only shrink the new list",
			body: body(`{"op":"replace","path":"members","value":[{"value":"u1"},{"value":"u2"}]}`, `{"op":"remove","path":"members[value eq \"u1\"]"}`, `{"op":"remove","path":"members[display eq \"x\"]"}`),
			want: MemberChange{Replay: true}, // u2 keeps a display the filter may match
		},
		{
			name: "replace with null empties the group",
			body: body(`{"op":"replace","path":"members","value":null}`),
			want: MemberChange{ReplaceAll: true},
		},
		{
			name:        "other filters become RemoveWhere and drop matching pending adds",
			body:        body(`{"op":"add","path":"members","value":[{"value":"g1","display":"X"},{"value":"u1","display":"Y"}]}`, `{"op":"remove","path":"members[DISPLAY eq \"X\"]"}`, `{"op":"add","path":"members","value":[{"value":"g2","display":"X"}]}`),
			want:        MemberChange{Add: []Member{{Value: "u1", Display: "Y"}, {Value: "g2", Display: "X"}}, Remove: []string{"g1"}},
			removeWhere: []string{`display eq "X"`},
		},
		{
			name: "a filter on type after a member is added replays: a given type is not the kind",
			body: body(`{"op":"add","path":"members","value":[{"value":"g1","type":"Group"},{"value":"u1","type":"User"}]}`, `{"op":"remove","path":"members[TYPE eq \"group\"]"}`),
			want: MemberChange{Replay: true},
		},
		{
			name: "a member matched by the display it was added with is removed, whatever it was before",
			body: body(`{"op":"add","path":"members","value":[{"value":"u1","display":"Eng"},{"value":"u2"}]}`, `{"op":"remove","path":"members[display eq \"Eng\"]"}`),
			want: MemberChange{Replay: true}, // u2 keeps a display the filter may match
		},
		{
			name:        "an and filter on value is not a plain id removal",
			body:        body(`{"op":"remove","path":"members[value eq \"u1\" and type eq \"User\"]"}`),
			want:        MemberChange{},
			removeWhere: []string{`value eq "u1" and type eq "User"`},
		},
		{
			name:    "path-less member values",
			body:    body(`{"op":"add","value":{"members":[{"value":"u1"}]}}`, `{"op":"replace","value":{"displayName":"G2","members":[{"value":"u3"}]}}`),
			want:    MemberChange{ReplaceAll: true, Add: []Member{{Value: "u3"}}},
			changed: []string{"displayName", "members"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc := jsonDoc(t, `{"displayName":"G","externalId":"8aa1"}`)
			ops := mustParse(t, tc.body, groupSchema())
			got, changed, err := Apply(doc, ops, groupSchema())
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			mc, err := Members(ops)
			if err != nil {
				t.Fatalf("Members: %v", err)
			}
			var where []string
			for _, e := range mc.RemoveWhere {
				where = append(where, fmt.Sprint(e))
			}
			if mc.Replay { // the rest of the change says nothing
				mc = MemberChange{Replay: true}
			} else if !slices.Equal(where, tc.removeWhere) {
				t.Fatalf("RemoveWhere = %q, want %q", where, tc.removeWhere)
			}
			mc.RemoveWhere, mc.members = nil, nil
			deepEqualJSON(t, "member change", mc, tc.want)
			wantChanged := tc.changed
			if wantChanged == nil {
				wantChanged = []string{"members"}
			}
			if !slices.Equal(changed, wantChanged) {
				t.Fatalf("changed = %q, want %q", changed, wantChanged)
			}
			if _, ok := got["members"]; ok {
				t.Fatal("members ended up in the document")
			}
		})
	}
}

// TestRemoveWhereIsCanonical checks that RemoveWhere filters use canonical sub-attribute names
// and typed values, so the caller can evaluate them against {"value","type","display","$ref"}.
func TestRemoveWhereIsCanonical(t *testing.T) {
	ops := mustParse(t, body(`{"op":"remove","path":"members[not (DISPLAY sw \"Eng\")]"}`, `{"op":"remove","path":"members[$REF pr and TYPE eq \"user\"]"}`), groupSchema())
	mc, err := Members(ops)
	if err != nil {
		t.Fatal(err)
	}
	if len(mc.RemoveWhere) != 2 {
		t.Fatalf("RemoveWhere = %v", mc.RemoveWhere)
	}
	not := mc.RemoveWhere[0].(*filter.NotExpression).Expression.(*filter.AttributeExpression)
	and := mc.RemoveWhere[1].(*filter.LogicalExpression)
	ref, typ := and.Left.(*filter.AttributeExpression), and.Right.(*filter.AttributeExpression)
	if not.AttributePath.AttributeName != "display" || not.CompareValue != "Eng" ||
		ref.AttributePath.AttributeName != "$ref" || typ.AttributePath.AttributeName != "type" {
		t.Fatalf("filters not canonical: %v", mc.RemoveWhere)
	}
	members := *ops[0].t.attr
	for _, tc := range []struct {
		m       Member
		e       filter.Expression
		matches bool
	}{
		{Member{Value: "u1", Display: "Engineering"}, mc.RemoveWhere[0], false},
		{Member{Value: "u1", Display: "Sales"}, mc.RemoveWhere[0], true},
		{Member{Value: "u1", Type: "User", Ref: "https://x/Users/u1"}, mc.RemoveWhere[1], true},
		{Member{Value: "u1", Type: "User"}, mc.RemoveWhere[1], false},
	} {
		if got := matches(tc.e, members, tc.m.element()); got != tc.matches {
			t.Errorf("%v matches %+v = %v, want %v", tc.e, tc.m, got, tc.matches)
		}
		if got := mc.Selecting(tc.m)(tc.e); got != tc.matches {
			t.Errorf("Selecting(%+v)(%v) = %v, want %v", tc.m, tc.e, got, tc.matches)
		}
	}
}

// BenchmarkMembersAdd folds one PATCH that adds n members, then removes a tenth of them (Entra's
// removal by value): the cost per member must not grow with n (compare the ns/member of the two
// sizes).
func BenchmarkMembersAdd(b *testing.B) {
	s := groupSchema()
	for _, n := range []int{100, 10_000} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			var add, remove strings.Builder
			for i := range n {
				fmt.Fprintf(&add, `%s{"value":"%08d-0000-0000-0000-000000000000"}`, map[bool]string{true: ",", false: ""}[i > 0], i)
				if i%10 == 0 {
					fmt.Fprintf(&remove, `%s{"value":"%08d-0000-0000-0000-000000000000"}`, map[bool]string{true: ",", false: ""}[i > 0], i)
				}
			}
			ops := mustParse(b, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"members","value":[`+
				add.String()+`]},{"op":"remove","path":"members","value":[`+remove.String()+`]}]}`, s)
			b.ReportAllocs()
			for b.Loop() {
				if mc, err := Members(ops); err != nil || len(mc.Add) != n-n/10 {
					b.Fatalf("Members: %d members to add, %v; want %d", len(mc.Add), err, n-n/10)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/member")
		})
	}
}

// FuzzMemberFold folds random sequences of member operations (add, remove by id, replace,
// clear, over a few ids and display names) and compares the change with the plain reading of
// MemberChange's rules, one member at a time: memberState's indexes must not change what it
// computes.
func FuzzMemberFold(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 1, 1, 2, 0, 1})
	f.Add([]byte{2, 5, 1, 1, 0, 5, 3, 0, 0x41, 1, 0x10})
	f.Fuzz(func(t *testing.T, prog []byte) {
		var got memberState
		var want MemberChange
		for len(prog) >= 2 {
			kind, n := prog[0]%4, int(prog[1]%8)
			prog = prog[2:]
			var ms []Member
			for ; n > 0 && len(prog) > 0; n-- {
				ms = append(ms, Member{Value: fmt.Sprint("u", prog[0]%6), Display: strings.TrimPrefix(fmt.Sprint(prog[0]/64), "0")})
				prog = prog[1:]
			}
			switch kind {
			case 0:
				got.add(ms)
				want = refAdd(want, ms)
			case 1:
				ids := make([]string, len(ms))
				for i, m := range ms {
					ids[i] = m.Value
				}
				got.remove(ids)
				want = refRemove(want, ids)
			case 2:
				got.reset(MemberChange{ReplaceAll: true})
				got.add(ms)
				want = refAdd(MemberChange{ReplaceAll: true}, ms)
			default:
				got.reset(MemberChange{RemoveAll: true})
				want = MemberChange{RemoveAll: true}
			}
			if c := got.change; !reflect.DeepEqual(nilIfEmpty(c.Add), nilIfEmpty(want.Add)) || !slices.Equal(c.Remove, want.Remove) ||
				c.ReplaceAll != want.ReplaceAll || c.RemoveAll != want.RemoveAll {
				t.Fatalf("folded %+v, want %+v", c, want)
			}
		}
	})
}

// refAdd and refRemove are MemberChange's rules applied one member at a time.
func refAdd(c MemberChange, ms []Member) MemberChange {
	for _, m := range ms {
		c.Remove = slices.DeleteFunc(c.Remove, func(id string) bool { return id == m.Value })
		if i := slices.IndexFunc(c.Add, func(a Member) bool { return a.Value == m.Value }); i >= 0 {
			if m.Display == "" {
				m.Display = c.Add[i].Display
			}
			c.Add[i] = m
		} else {
			c.Add = append(c.Add, m)
		}
	}
	return c
}

func refRemove(c MemberChange, ids []string) MemberChange {
	for _, id := range ids {
		c.Add = slices.DeleteFunc(c.Add, func(m Member) bool { return m.Value == id })
		if !c.ReplaceAll && !c.RemoveAll && !slices.Contains(c.Remove, id) {
			c.Remove = append(c.Remove, id)
		}
	}
	return c
}

// TestPendingMatchesBounded: filters that are not on the member id are each compared with every
// member added before them; past maxPendingMatches comparisons the PATCH is refused as tooMany
// (naming neither member nor display), and up to it the fold is done.
func TestPendingMatchesBounded(t *testing.T) {
	addAs := func(n int, member string) string {
		ms := make([]string, n)
		for i := range ms {
			ms[i] = fmt.Sprintf(member, i)
		}
		return `{"op":"add","path":"members","value":[` + strings.Join(ms, ",") + `]}`
	}
	add := func(n int) string { return addAs(n, `{"value":"u%d","display":"Secret Name"}`) }
	// Without a display a member keeps the one it has, so a display filter after it replays.
	addBare := func(n int) string { return addAs(n, `{"value":"u%d"}`) }
	removals := func(n int, filter string) []string {
		ops := make([]string, n)
		for i := range ops {
			ops[i] = fmt.Sprintf(`{"op":"remove","path":"members[%s]"}`, fmt.Sprintf(filter, i))
		}
		return ops
	}
	for _, tc := range []struct {
		name   string
		ops    []string
		refuse bool
	}{
		{"1,001 adds, 999 one-comparison filters", append([]string{add(1001)}, removals(999, `display eq \"x%d\"`)...), false},
		{"1,002 adds, 999 one-comparison filters", append([]string{add(1002)}, removals(999, `display eq \"x%d\"`)...), true},
		{"1,000 adds, 500 two-comparison filters", append([]string{add(1000)}, removals(500, `display eq \"x%d\" or type eq \"Group\"`)...), false},
		{"1,000 adds, 501 two-comparison filters", append([]string{add(1000)}, removals(501, `not (display eq \"Secret Name\" or display eq \"x%d\")`)...), true},
		{"filters before the adds compare with nothing", append(removals(999, `display eq \"x%d\"`), add(5000)), false},
		{"removals by id compare with nothing", append([]string{add(5000)}, removals(999, `value eq \"u%d\"`)...), false},
		{"a replay: 1,001 adds without a display, 999 filters", append([]string{addBare(1001)}, removals(999, `display eq \"x%d\"`)...), false},
		{"a replay: 1,002 adds without a display, 999 filters", append([]string{addBare(1002)}, removals(999, `display eq \"x%d\"`)...), true},
		{"a replay: a type filter after 1,002 adds", append([]string{add(1002)}, removals(999, `type eq \"x%d\"`)...), true},
		{"a replay: filters after some adds were removed by id", append([]string{addBare(1012), strings.Replace(addBare(12), `"add"`, `"remove"`, 1)},
			removals(998, `display eq \"x%d\"`)...), false},
		{"a replay: the same members added twice count once", append([]string{addBare(1000), addBare(1000)}, removals(998, `display eq \"x%d\"`)...), false},
		{"a replay: removing ids never added takes nothing off", append([]string{addBare(1500), strings.Replace(addAs(1500, `{"value":"v%d"}`), `"add"`, `"remove"`, 1)},
			removals(998, `display eq \"x%d\"`)...), true},
		{"a replay after the fold matched the displayed adds away", append(append([]string{add(2000), `{"op":"remove","path":"members[display eq \"Secret Name\"]"}`},
			removals(500, `display eq \"x%d\"`)...), `{"op":"remove","path":"members[value eq \"g1\"]"}`, `{"op":"add","path":"members","value":[{"value":"g1"}]}`), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mc, err := Members(mustParse(t, body(tc.ops...), groupSchema()))
			if tc.refuse {
				checkError(t, err, tooMany, "Secret", "u1")
				return
			}
			if err != nil {
				t.Fatalf("Members: %v", err)
			}
			if len(mc.Add) == 0 {
				t.Fatal("no member left to add")
			}
		})
	}
}

// FuzzFoldAgreesWithReplay builds random member operations over a few members and a random
// group, and checks that whenever the fold says it can decide (Replay unset), its change, applied
// as the service applies it, leaves the members that replaying the operations one by one does.
func FuzzFoldAgreesWithReplay(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7})
	f.Add([]byte{0x13, 0x40, 0x21, 0x05, 0x33, 0x11, 0x62})
	filters := []string{`display eq \"A\"`, `type eq \"Group\"`, `not (display pr)`, `value eq \"u1\" or value eq \"u3\"`, `display eq \"B\" and type eq \"User\"`, `$ref sw \"/Groups/\"`}
	kindOf := func(id string) (string, string) { // the server's type and $ref of a member
		if id == "u4" {
			return "Group", "/Groups/" + id
		}
		return "User", "/Users/" + id
	}
	f.Fuzz(func(t *testing.T, prog []byte) {
		if len(prog) == 0 {
			return
		}
		var group []Member // the group before the PATCH: a member per bit of prog[0]
		for i := range 5 {
			if prog[0]>>i&1 == 1 {
				m := Member{Value: fmt.Sprint("u", i), Display: []string{"", "A", "B"}[(int(prog[0])>>5+i)%3]}
				m.Type, m.Ref = kindOf(m.Value)
				group = append(group, m)
			}
		}
		var ops []string
		for prog = prog[1:]; len(prog) >= 2 && len(ops) < 8; prog = prog[2:] {
			var ms []string
			for j := range 1 + int(prog[1]>>6) {
				b := int(prog[1]) >> (2 * j)
				m := fmt.Sprintf(`"value":"u%d"`, (b+j)%5)
				if d := []string{"", "A", "B"}[b%3]; d != "" {
					m += fmt.Sprintf(`,"display":%q`, d)
				}
				if t := []string{"", "", "User", "Group"}[(b+int(prog[0]))%4]; t != "" { // given, right or wrong
					m += fmt.Sprintf(`,"type":%q,"$ref":"/%ss/u%d"`, t, t, (b+j)%5)
				}
				ms = append(ms, "{"+m+"}")
			}
			list := "[" + strings.Join(ms, ",") + "]"
			switch prog[0] % 6 {
			case 0, 1:
				ops = append(ops, `{"op":"add","path":"members","value":`+list+`}`)
			case 2:
				ops = append(ops, `{"op":"replace","path":"members","value":`+list+`}`)
			case 3:
				ops = append(ops, `{"op":"remove","path":"members[`+filters[int(prog[1])%len(filters)]+`]"}`)
			case 4:
				ops = append(ops, `{"op":"remove","path":"members","value":`+list+`}`)
			default:
				ops = append(ops, `{"op":"remove","path":"members"}`)
			}
		}
		if len(ops) == 0 {
			return
		}
		parsed, err := Parse([]byte(body(ops...)), groupSchema())
		if err != nil {
			t.Fatalf("Parse: %v", err)
		}
		mc, err := Members(parsed)
		if err != nil || mc.Replay {
			return
		}
		want, err := Replay(parsed, group, kindOf, func() error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		if got := applied(group, mc, kindOf); !slices.Equal(got, sortedByValue(want)) {
			t.Fatalf("after %s\nfold leaves %+v, replay %+v (change %+v)", ops, got, sortedByValue(want), mc)
		}
	})
}

// applied applies mc to group as the service does: drops (Remove, RemoveWhere matches, all for
// RemoveAll) before adds; an add without a display keeps a member's display; a replace keeps the
// display of a member that stays.
func applied(group []Member, mc MemberChange, kindOf func(string) (string, string)) []Member {
	cur := map[string]Member{}
	for _, m := range group {
		cur[m.Value] = m
	}
	if mc.ReplaceAll {
		next := map[string]Member{}
		for _, m := range mc.Add {
			m.Type, m.Ref = kindOf(m.Value)
			if old, ok := cur[m.Value]; ok && m.Display == "" {
				m.Display = old.Display
			}
			next[m.Value] = m
		}
		cur = next
	} else {
		if mc.RemoveAll {
			clear(cur)
		}
		for _, id := range mc.Remove {
			delete(cur, id)
		}
		for id, m := range cur {
			selects := mc.Selecting(m)
			for _, f := range mc.RemoveWhere {
				if selects(f) {
					delete(cur, id)
				}
			}
		}
		for _, m := range mc.Add {
			m.Type, m.Ref = kindOf(m.Value)
			if old, ok := cur[m.Value]; ok && m.Display == "" {
				m.Display = old.Display
			}
			cur[m.Value] = m
		}
	}
	out := slices.Collect(maps.Values(cur))
	return sortedByValue(out)
}

func sortedByValue(ms []Member) []Member {
	ms = slices.Clone(ms)
	slices.SortFunc(ms, func(a, b Member) int { return strings.Compare(a.Value, b.Value) })
	for i := range ms {
		ms[i].Ref = ""
	}
	return ms
}
