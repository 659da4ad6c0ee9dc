package strictjson

import (
	"encoding/json"
	"unicode/utf8"
)

// decodeFast decodes a value in one pass that also checks everything Check does. It is made for
// the bodies identity providers send and the documents the server stores; what it does not
// handle (a number it cannot read, an escape it cannot check), and any fault, makes it give up
// (ok false): the callers then take the general path, which decides. So it never accepts what
// that path refuses, nor decodes differently (FuzzDecodeFast holds it to that).
func decodeFast(raw []byte) (v any, ok bool) {
	p := fastParser{b: raw}
	p.space()
	if v, ok = p.value(0); !ok {
		return nil, false
	}
	p.space()
	return v, p.i == len(p.b)
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

// string parses a string in valid UTF-8 without control characters. A string with escapes is
// unquoted by encoding/json once every escape is known to be well formed, surrogate halves in
// pairs.
func (p *fastParser) string() (any, bool) {
	start, escaped := p.i+1, false
	for j := start; j < len(p.b); j++ {
		switch c := p.b[j]; {
		case c == '"':
			if !utf8.Valid(p.b[start:j]) {
				return nil, false
			}
			p.i = j + 1
			if !escaped {
				return string(p.b[start:j]), true
			}
			var s string
			if json.Unmarshal(p.b[start-1:j+1], &s) != nil {
				return nil, false
			}
			return s, true
		case c == '\\':
			n := escapeLen(p.b[j:])
			if n == 0 {
				return nil, false
			}
			escaped = true
			j += n - 1
		case c < 0x20:
			return nil, false
		}
	}
	return nil, false
}

// escapeLen is the length of the escape at the start of b, 0 when it is malformed or escapes
// half of a surrogate pair without the other half.
func escapeLen(b []byte) int {
	if len(b) < 2 {
		return 0
	}
	switch b[1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 2
	case 'u':
	default:
		return 0
	}
	r, ok := hexEscape(b)
	switch {
	case !ok || isLowHalf(r):
		return 0
	case r < 0xd800 || r >= 0xdc00:
		return 6
	}
	if low, ok := hexEscape(b[6:]); ok && isLowHalf(low) {
		return 12
	}
	return 0
}

// hexEscape reads the rune of the \uXXXX escape at the start of b.
func hexEscape(b []byte) (rune, bool) {
	if len(b) < 6 || b[0] != '\\' || b[1] != 'u' {
		return 0, false
	}
	var r rune
	for _, c := range b[2:6] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
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
