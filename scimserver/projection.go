package scimserver

import (
	"strings"
)

// projection is a parsed attributes / excludedAttributes pair (RFC 7644 §3.4.2.5).
type projection struct {
	include []attrRef
	exclude []attrRef
	// wholeExt lists extensions named by bare URN in attributes (include) or excluded.
	includeExt, excludeExt []string
}

// parseProjection resolves the comma-separated attribute lists. Names the schema does not
// know are ignored, as they would match nothing.
func (k *Kind) parseProjection(attributes, excluded []string) projection {
	var p projection
	for _, list := range []struct {
		names []string
		refs  *[]attrRef
		exts  *[]string
	}{{attributes, &p.include, &p.includeExt}, {excluded, &p.exclude, &p.excludeExt}} {
		for _, n := range list.names {
			for _, n := range strings.Split(n, ",") {
				n = strings.TrimSpace(n)
				if n == "" {
					continue
				}
				urn, name, sub := k.splitPath(n)
				if name == "" && urn != "" {
					*list.exts = append(*list.exts, urn)
					continue
				}
				if ref, ok := k.resolve(urn, name, sub); ok {
					*list.refs = append(*list.refs, ref)
				}
			}
		}
	}
	return p
}

// wants reports whether a top-level attribute will survive the projection; renderers use it to
// skip expensive work (a group's members).
func (p projection) wants(name string) bool {
	if len(p.include) > 0 || len(p.includeExt) > 0 {
		for _, r := range p.include {
			if r.urn == "" && strings.EqualFold(r.attr.Name(), name) {
				return true
			}
		}
		return false
	}
	for _, r := range p.exclude {
		if r.urn == "" && r.sub == nil && strings.EqualFold(r.attr.Name(), name) {
			return false
		}
	}
	return true
}

func (p projection) empty() bool {
	return len(p.include) == 0 && len(p.exclude) == 0 && len(p.includeExt) == 0 && len(p.excludeExt) == 0
}

// alwaysReturned are the attributes RFC 7643 returns whatever the request says.
var alwaysReturned = map[string]bool{"id": true, "schemas": true}

// apply projects a rendered resource in place and returns it.
func (p projection) apply(k *Kind, m map[string]any) map[string]any {
	if p.empty() {
		return m
	}
	if len(p.include) > 0 || len(p.includeExt) > 0 {
		out := map[string]any{}
		for k := range alwaysReturned {
			if v, ok := m[k]; ok {
				out[k] = v
			}
		}
		for _, urn := range p.includeExt {
			if v, ok := m[urn]; ok {
				out[urn] = v
			}
		}
		for _, ref := range p.include {
			copyRef(out, m, ref)
		}
		m = out
	}
	for _, urn := range p.excludeExt {
		delete(m, urn)
	}
	for _, ref := range p.exclude {
		if ref.urn == "" && alwaysReturned[ref.attr.Name()] {
			continue
		}
		removeRef(m, ref)
	}
	// An extension left empty is dropped, with its URN in "schemas".
	if schemasList, ok := m["schemas"].([]string); ok {
		kept := schemasList[:1:1]
		for _, urn := range schemasList[1:] {
			if ext, ok := m[urn].(map[string]any); ok && len(ext) > 0 {
				kept = append(kept, urn)
			} else {
				delete(m, urn)
			}
		}
		m["schemas"] = kept
	}
	return m
}

func container(m map[string]any, urn string, create bool) map[string]any {
	if urn == "" {
		return m
	}
	ext, ok := m[urn].(map[string]any)
	if !ok && create {
		ext = map[string]any{}
		m[urn] = ext
	}
	return ext
}

// copyRef copies the attribute (or sub-attribute) ref names from src into dst.
func copyRef(dst, src map[string]any, ref attrRef) {
	from := container(src, ref.urn, false)
	if from == nil {
		return
	}
	v, ok := from[ref.attr.Name()]
	if !ok {
		return
	}
	to := container(dst, ref.urn, true)
	if ref.sub == nil {
		to[ref.attr.Name()] = v
		return
	}
	sub := ref.sub.Name()
	switch x := v.(type) {
	case map[string]any:
		if sv, ok := x[sub]; ok {
			cur, _ := to[ref.attr.Name()].(map[string]any)
			if cur == nil {
				cur = map[string]any{}
			}
			cur[sub] = sv
			to[ref.attr.Name()] = cur
		}
	case []any:
		cur, _ := to[ref.attr.Name()].([]any)
		if cur == nil {
			cur = make([]any, len(x))
			for i := range cur {
				cur[i] = map[string]any{}
			}
		}
		for i, el := range x {
			if obj, ok := el.(map[string]any); ok && i < len(cur) {
				if sv, ok := obj[sub]; ok {
					cur[i].(map[string]any)[sub] = sv
				}
			}
		}
		to[ref.attr.Name()] = cur
	}
}

// removeRef deletes the attribute (or sub-attribute) ref names from m.
func removeRef(m map[string]any, ref attrRef) {
	c := container(m, ref.urn, false)
	if c == nil {
		return
	}
	if ref.sub == nil {
		delete(c, ref.attr.Name())
		return
	}
	sub := ref.sub.Name()
	switch x := c[ref.attr.Name()].(type) {
	case map[string]any:
		delete(x, sub)
	case []any:
		for _, el := range x {
			if obj, ok := el.(map[string]any); ok {
				delete(obj, sub)
			}
		}
	}
}
