package httpapi

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// attrDef is an attribute as /Schemas describes it (RFC 7643 §7).
type attrDef struct {
	Name            string    `json:"name"`
	Type            string    `json:"type"`
	MultiValued     bool      `json:"multiValued"`
	Required        bool      `json:"required"`
	CaseExact       bool      `json:"caseExact"`
	Mutability      string    `json:"mutability"`
	Returned        string    `json:"returned"`
	Uniqueness      string    `json:"uniqueness"`
	Description     string    `json:"description"`
	CanonicalValues []string  `json:"canonicalValues"`
	ReferenceTypes  []string  `json:"referenceTypes"`
	SubAttributes   []attrDef `json:"subAttributes"`
}

// servedType is what /ResourceTypes and /Schemas tell a generic client about one resource type.
type servedType struct {
	core       string
	attrs      map[string][]attrDef // by schema URN: the core schema and every extension
	extensions []string
}

// served reads the resource type and its schemas the way a generic client discovers them.
func served(e *testEnv, resourceType string) servedType {
	e.t.Helper()
	rt := e.do("GET", "/scim/v2/ResourceTypes/"+resourceType, nil).must(e.t, 200)
	st := servedType{core: str(rt["schema"]), attrs: map[string][]attrDef{}}
	ids := []string{st.core}
	for _, ext := range asList(rt["schemaExtensions"]) {
		st.extensions = append(st.extensions, str(get(ext, "schema")))
		ids = append(ids, str(get(ext, "schema")))
	}
	for _, id := range ids {
		r := e.do("GET", "/scim/v2/Schemas/"+id, nil)
		r.must(e.t, 200)
		var s struct {
			ID         string    `json:"id"`
			Attributes []attrDef `json:"attributes"`
		}
		if err := json.Unmarshal(r.raw, &s); err != nil || s.ID != id || len(s.Attributes) == 0 {
			e.t.Fatalf("/Schemas/%s: %v %s", id, err, r.raw)
		}
		st.attrs[id] = s.Attributes
	}
	return st
}

func findDef(defs []attrDef, name string) (attrDef, bool) {
	i := slices.IndexFunc(defs, func(d attrDef) bool { return d.Name == name })
	if i < 0 {
		return attrDef{}, false
	}
	return defs[i], true
}

// check validates a resource as the server returned it against what discovery says: every
// attribute is described, and every value fits its attribute's type, plurality, canonical values
// and reference types. It returns the problems found, each naming the attribute.
func (st servedType) check(res map[string]any) []string {
	var problems []string
	report := func(path, format string, args ...any) {
		problems = append(problems, path+": "+fmt.Sprintf(format, args...))
	}
	for k, v := range res {
		switch {
		case k == "schemas":
			for _, s := range asList(v) {
				if str(s) != st.core && !slices.Contains(st.extensions, str(s)) {
					report(k, "lists %v, which is not a schema of the resource type", s)
				}
			}
		case slices.Contains(st.extensions, k):
			obj, ok := v.(map[string]any)
			if !ok {
				report(k, "is not an object")
				continue
			}
			for sk, sv := range obj {
				checkAttr(st.attrs[k], k+":"+sk, sk, sv, report)
			}
		default:
			checkAttr(st.attrs[st.core], k, k, v, report)
		}
	}
	for _, d := range st.attrs[st.core] {
		if _, ok := res[d.Name]; !ok && d.Required && d.Returned != "never" {
			report(d.Name, "is required but missing")
		}
	}
	slices.Sort(problems)
	return problems
}

func checkAttr(defs []attrDef, path, name string, v any, report func(path, format string, args ...any)) {
	d, ok := findDef(defs, name)
	if !ok {
		report(path, "is returned but /Schemas does not describe it")
		return
	}
	if d.Returned == "never" {
		report(path, "is returned although /Schemas says it never is")
	}
	if !d.MultiValued {
		checkValue(d, path, v, report)
		return
	}
	list, ok := v.([]any)
	if !ok || len(list) == 0 {
		report(path, "is multi-valued but not a non-empty array")
		return
	}
	for i, el := range list {
		checkValue(d, fmt.Sprintf("%s[%d]", path, i), el, report)
	}
}

func checkValue(d attrDef, path string, v any, report func(path, format string, args ...any)) {
	switch d.Type {
	case "complex":
		obj, ok := v.(map[string]any)
		if !ok {
			report(path, "is not an object")
			return
		}
		for k, sv := range obj {
			sub, ok := findDef(d.SubAttributes, k)
			if !ok {
				report(path+"."+k, "is returned but /Schemas does not describe it")
				continue
			}
			checkValue(sub, path+"."+k, sv, report)
		}
	case "string":
		s, ok := v.(string)
		switch {
		case !ok:
			report(path, "is not a string")
		case len(d.CanonicalValues) > 0 && !slices.ContainsFunc(d.CanonicalValues, func(c string) bool {
			return c == s || (!d.CaseExact && strings.EqualFold(c, s))
		}):
			report(path, "%q is not one of the canonical values %v", s, d.CanonicalValues)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			report(path, "is not a boolean")
		}
	case "integer":
		if n, ok := v.(float64); !ok || n != math.Trunc(n) {
			report(path, "is not an integer")
		}
	case "decimal":
		if _, ok := v.(float64); !ok {
			report(path, "is not a number")
		}
	case "dateTime":
		if _, err := time.Parse(time.RFC3339, str(v)); err != nil {
			report(path, "%q is not a dateTime", v)
		}
	case "binary":
		if _, err := base64.StdEncoding.DecodeString(str(v)); err != nil || str(v) == "" {
			report(path, "is not base64")
		}
	case "reference":
		checkReference(d, path, v, report)
	default:
		report(path, "has type %q, which RFC 7643 does not define", d.Type)
	}
}

// checkReference checks a reference against its referenceTypes (RFC 7643 §2.3.7, §7): an
// absolute URI, with a host for "external", and the location of a User or Group for those.
func checkReference(d attrDef, path string, v any, report func(path, format string, args ...any)) {
	s, ok := v.(string)
	u, err := url.Parse(s)
	if !ok || err != nil || !u.IsAbs() {
		report(path, "%q is not an absolute URI", v)
		return
	}
	fits := false
	for _, rt := range d.ReferenceTypes {
		switch rt {
		case "external":
			fits = fits || u.Host != ""
		case "uri":
			fits = true
		default: // a resource type: its location ends in /<endpoint>/<id>
			dir, id := pathSplit(u.Path)
			fits = fits || (id != "" && strings.HasSuffix(dir, "/"+rt+"s"))
		}
	}
	if len(d.ReferenceTypes) > 0 && !fits {
		report(path, "%q is none of the reference types %v", s, d.ReferenceTypes)
	}
}

func pathSplit(p string) (dir, last string) {
	i := strings.LastIndex(p, "/")
	if i < 0 {
		return "", p
	}
	return p[:i], p[i+1:]
}

// missing lists the attributes and sub-attributes /Schemas describes for the resource type that
// res does not show, except those named in except: it proves a fixture populates everything.
func (st servedType) missing(res map[string]any, except ...string) []string {
	var out []string
	for urn, defs := range st.attrs {
		obj, prefix := res, ""
		if urn != st.core {
			obj, _ = res[urn].(map[string]any)
			prefix = urn + ":"
		}
		for _, d := range defs {
			v, ok := obj[d.Name]
			if !ok {
				out = append(out, prefix+d.Name)
				continue
			}
			for _, sub := range d.SubAttributes {
				elems := []any{v}
				if d.MultiValued {
					elems = asList(v)
				}
				if !slices.ContainsFunc(elems, func(el any) bool { return get(el, sub.Name) != nil }) {
					out = append(out, prefix+d.Name+"."+sub.Name)
				}
			}
		}
	}
	out = slices.DeleteFunc(out, func(n string) bool { return slices.Contains(except, n) })
	slices.Sort(out)
	return out
}

// TestSchemasListCommonAttributes: /Schemas describes externalId for User and Group (Entra ID's
// gallery validation requires it), and id and meta as the read-only attributes they are.
func TestSchemasListCommonAttributes(t *testing.T) {
	e := newEnv(t)
	for _, rt := range []string{"User", "Group"} {
		st := served(e, rt)
		want := map[string]attrDef{
			"externalId": {Type: "string", CaseExact: true, Mutability: "readWrite", Returned: "default", Uniqueness: "none"},
			"id":         {Type: "string", CaseExact: true, Mutability: "readOnly", Returned: "always", Uniqueness: "server"},
			"meta":       {Type: "complex", Mutability: "readOnly", Returned: "default"},
		}
		for name, w := range want {
			d, ok := findDef(st.attrs[st.core], name)
			if !ok {
				t.Errorf("%s: /Schemas does not list %s", rt, name)
				continue
			}
			if d.Type != w.Type || d.CaseExact != w.CaseExact || d.Mutability != w.Mutability || d.Returned != w.Returned ||
				d.Uniqueness != w.Uniqueness || d.MultiValued || d.Required != (name == "id") || d.Description == "" {
				t.Errorf("%s.%s characteristics: %+v", rt, name, d)
			}
		}
		if d, _ := findDef(st.attrs[st.core], "meta"); len(d.SubAttributes) != 5 ||
			slices.ContainsFunc(d.SubAttributes, func(s attrDef) bool { return s.Mutability != "readOnly" }) {
			t.Errorf("%s.meta sub-attributes: %+v", rt, d.SubAttributes)
		}
	}
	// Every schema /ResourceTypes names is served by /Schemas, and nothing else is: the list
	// holds exactly the resource types' schemas and the three that describe discovery itself.
	all := e.do("GET", "/scim/v2/Schemas", nil).must(t, 200)
	var listed []string
	for _, s := range asList(all["Resources"]) {
		listed = append(listed, str(get(s, "id")))
	}
	var named []string
	for _, rt := range asList(e.do("GET", "/scim/v2/ResourceTypes", nil).must(t, 200)["Resources"]) {
		named = append(named, str(get(rt, "schema")))
		for _, ext := range asList(get(rt, "schemaExtensions")) {
			named = append(named, str(get(ext, "schema")))
		}
	}
	named = append(named, "urn:ietf:params:scim:schemas:core:2.0:Schema", "urn:ietf:params:scim:schemas:core:2.0:ResourceType",
		"urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig")
	slices.Sort(listed)
	slices.Sort(named)
	if !slices.Equal(listed, named) {
		t.Fatalf("/Schemas lists %v, /ResourceTypes names %v", listed, named)
	}
}

// fullUser creates a user with every attribute /Schemas describes set, to valid values with
// canonical values where there are some, makes it a member of a group and audited, and returns
// its id and its personal values.
func fullUser(e *testEnv, tag string) (string, []string) {
	e.t.Helper()
	mgr := e.createUser("full-manager-"+tag+"@example.com", nil)
	personal := []string{"full." + tag + "@example.com", "Fullgiven" + tag, "Fullfamily" + tag, "Fullmiddle" + tag,
		"Full Display " + tag, "Fullnick" + tag, "https://profiles.example/full" + tag, "full.work" + tag + "@example.com",
		"+31 20 555 01" + tag, "full" + tag + "@xmpp.example", "https://photos.example/full" + tag + ".jpg",
		"1 Full Street " + tag, "EMPFULL" + tag, "full-ext-" + tag, "FullPassword" + tag}
	id := e.createUser(personal[0], map[string]any{
		"name": map[string]any{"formatted": "Dr " + personal[1] + " " + personal[3] + " " + personal[2] + " III", "familyName": personal[2],
			"givenName": personal[1], "middleName": personal[3], "honorificPrefix": "Dr", "honorificSuffix": "III"},
		"displayName": personal[4], "nickName": personal[5], "profileUrl": personal[6], "title": "Assessor",
		"userType": "Employee", "preferredLanguage": "nl-NL", "locale": "nl-NL", "timezone": "Europe/Amsterdam", "active": true,
		"password":     personal[14],
		"emails":       []any{map[string]any{"value": personal[7], "display": personal[7], "type": "work", "primary": true}},
		"phoneNumbers": []any{map[string]any{"value": personal[8], "display": personal[8], "type": "mobile", "primary": true}},
		"ims":          []any{map[string]any{"value": personal[9], "display": personal[9], "type": "xmpp", "primary": true}},
		"photos":       []any{map[string]any{"value": personal[10], "display": "Portrait", "type": "photo", "primary": true}},
		"addresses": []any{map[string]any{"formatted": personal[11] + ", 1011 AB Amsterdam", "streetAddress": personal[11],
			"locality": "Amsterdam", "region": "Noord-Holland", "postalCode": "1011 AB", "country": "NL", "type": "work", "primary": true}},
		"entitlements":     []any{map[string]any{"value": "reports", "display": "Reports", "type": "feature", "primary": true}},
		"roles":            []any{map[string]any{"value": "assessor", "display": "Assessor", "type": "platform", "primary": true}},
		"x509Certificates": []any{map[string]any{"value": base64.StdEncoding.EncodeToString([]byte("certificate " + tag)), "display": "Signing", "type": "signing", "primary": true}},
		"externalId":       personal[13],
		enterpriseURN: map[string]any{"employeeNumber": personal[12], "costCenter": "CC-1", "organization": "Org", "division": "Div",
			"department": "Assessment", "manager": map[string]any{"value": mgr, "$ref": e.srv.URL + "/scim/v2/Users/" + mgr}},
	})
	e.createGroup("Full group "+tag, id)
	e.api("POST", "/api/v1/users/"+id+"/interactions", map[string]any{"type": "login"}).must(e.t, 204)
	e.api("PUT", "/api/v1/campaigns/full-"+tag+"/participants/"+id, nil).must(e.t, 204)
	return id, personal
}

// fullGroup creates a group with every attribute set: a user and a group as members.
func fullGroup(e *testEnv, tag string) string {
	e.t.Helper()
	uid := e.createUser("member-"+tag+"@example.com", nil)
	inner := e.createGroup("Inner " + tag)
	return str(e.do("POST", "/scim/v2/Groups", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
		"displayName": "Full " + tag, "externalId": "full-group-" + tag,
		"members": []any{map[string]any{"value": uid, "display": "Member " + tag}, map[string]any{"value": inner, "display": "Inner " + tag}},
	}).must(e.t, 201)["id"])
}

// TestSchemasDescribeWhatIsReturned: every attribute the server returns for a fully populated
// User and Group is described by /Schemas and fits its description, so discovery and data
// cannot drift apart.
func TestSchemasDescribeWhatIsReturned(t *testing.T) {
	e := newEnv(t)
	users, groups := served(e, "User"), served(e, "Group")
	uid, _ := fullUser(e, "01")
	gid := fullGroup(e, "02")
	user := e.do("GET", "/scim/v2/Users/"+uid, nil).must(t, 200)
	group := e.do("GET", "/scim/v2/Groups/"+gid, nil).must(t, 200)
	// The fixtures set everything a client can set and the server can state.
	if m := users.missing(user, "password", enterpriseURN+":manager.displayName", lifecycleURN+":anonymizedAt", lifecycleURN+":scrubbedAt"); len(m) > 0 {
		t.Fatalf("the fully populated user lacks %v", m)
	}
	if m := groups.missing(group); len(m) > 0 {
		t.Fatalf("the fully populated group lacks %v", m)
	}
	for _, c := range []struct {
		what string
		st   servedType
		res  map[string]any
	}{{"user", users, user}, {"group", groups, group}} {
		if p := c.st.check(c.res); len(p) > 0 {
			t.Errorf("%s:\n  %s", c.what, strings.Join(p, "\n  "))
		}
	}
	// The checker itself fails on what it must catch.
	broken := map[string]any{}
	for k, v := range user {
		broken[k] = v
	}
	broken["profileUrl"], broken["shoeSize"], broken["active"] = "1soqh31pd2sa2dr9qatl", "42", "yes"
	broken["emails"] = []any{map[string]any{"value": "x@example.com", "type": "telepathy"}}
	broken["x509Certificates"] = []any{map[string]any{"value": "not base64!"}}
	delete(broken, "userName")
	want := []string{"active: is not a boolean", "emails[0].type: \"telepathy\" is not one of the canonical values [work home other]",
		"profileUrl: \"1soqh31pd2sa2dr9qatl\" is not an absolute URI", "shoeSize: is returned but /Schemas does not describe it",
		"userName: is required but missing", "x509Certificates[0].value: is not base64"}
	if got := users.check(broken); !slices.Equal(got, want) {
		t.Fatalf("the checker found\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}
