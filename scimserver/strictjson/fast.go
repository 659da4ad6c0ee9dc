package strictjson

import (
	"encoding/json"
	"unicode/utf8"
)

// decodeFast decodes the bodies identity providers send — an object of objects, arrays, numbers,
// literals and strings without escapes — in one pass that also checks everything Check does. Any
// other input, and any fault, makes it give up (ok false): DecodeObject then takes the general
// path, which decides. So it never accepts what that path refuses, nor decodes differently
// (FuzzDecodeFast holds it to that).
func decodeFast(raw []byte) (m map[string]any, ok bool) {
	p := fastParser{b: raw}
	p.space()
	if p.i >= len(p.b) || p.b[p.i] != '{' {
		return nil, false
	}
	v, ok := p.value(0)
	if !ok {
		return nil, false
	}
	p.space()
	if p.i != len(p.b) {
		return nil, false
	}
	m, ok = v.(map[string]any)
	return m, ok
}

type fastParser struct {
	b []byte
	i int
}

func (p *fastParser) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// value parses the value at p.i, which depth containers enclose.
func (p *fastParser) value(depth int) (any, bool) {
	if p.i >= len(p.b) {
		return nil, false
	}
	switch c := p.b[p.i]; {
	case c == '{':
		return p.object(depth + 1)
	case c == '[':
		return p.array(depth + 1)
	case c == '"':
		return p.string()
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	default:
		for _, lit := range [...]struct {
			text string
			v    any
		}{{"true", true}, {"false", false}, {"null", nil}} {
			if len(p.b)-p.i >= len(lit.text) && string(p.b[p.i:p.i+len(lit.text)]) == lit.text {
				p.i += len(lit.text)
				return lit.v, true
			}
		}
		return nil, false
	}
}

func (p *fastParser) object(depth int) (any, bool) {
	m := map[string]any{}
	more, ok := p.open(depth, '}')
	for ok && more {
		p.space()
		if p.i >= len(p.b) || p.b[p.i] != '"' {
			return nil, false
		}
		k, _ := p.string()
		key, isString := k.(string)
		if _, dup := m[key]; dup || !isString {
			return nil, false
		}
		p.space()
		if p.i >= len(p.b) || p.b[p.i] != ':' {
			return nil, false
		}
		p.i++
		p.space()
		if m[key], ok = p.value(depth); ok {
			more, ok = p.next('}')
		}
	}
	return m, ok
}

func (p *fastParser) array(depth int) (any, bool) {
	a := []any{}
	more, ok := p.open(depth, ']')
	for ok && more {
		p.space()
		var v any
		if v, ok = p.value(depth); ok {
			a = append(a, v)
			more, ok = p.next(']')
		}
	}
	return a, ok
}

// open enters the container at p.i, which is the depth-th, and reports whether it holds
// anything (more) before its closing byte.
func (p *fastParser) open(depth int, closing byte) (more, ok bool) {
	if depth > MaxDepth {
		return false, false
	}
	p.i++
	p.space()
	if p.i < len(p.b) && p.b[p.i] == closing {
		p.i++
		return false, true
	}
	return true, true
}

// next reads what follows a container's element: a comma (more) or its closing byte.
func (p *fastParser) next(closing byte) (more, ok bool) {
	p.space()
	if p.i < len(p.b) {
		switch p.b[p.i] {
		case ',':
			p.i++
			return true, true
		case closing:
			p.i++
			return false, true
		}
	}
	return false, false
}

// string parses a string without escapes or control characters, in valid UTF-8.
func (p *fastParser) string() (any, bool) {
	start := p.i + 1
	for j := start; j < len(p.b); j++ {
		switch c := p.b[j]; {
		case c == '"':
			s := p.b[start:j]
			if !utf8.Valid(s) {
				return nil, false
			}
			p.i = j + 1
			return string(s), true
		case c == '\\' || c < 0x20:
			return nil, false
		}
	}
	return nil, false
}

// number parses a JSON number, kept as written (json.Number, as UseNumber gives).
func (p *fastParser) number() (any, bool) {
	start := p.i
	digits := func() int {
		n := 0
		for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	if p.b[p.i] == '-' {
		p.i++
	}
	if p.i < len(p.b) && p.b[p.i] == '0' {
		p.i++
	} else if digits() == 0 {
		return nil, false
	}
	if p.i < len(p.b) && p.b[p.i] == '.' {
		p.i++
		if digits() == 0 {
			return nil, false
		}
	}
	if p.i < len(p.b) && (p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		p.i++
		if p.i < len(p.b) && (p.b[p.i] == '+' || p.b[p.i] == '-') {
			p.i++
		}
		if digits() == 0 {
			return nil, false
		}
	}
	return json.Number(p.b[start:p.i]), true
}
