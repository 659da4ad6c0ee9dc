// Package strictjson reads request bodies strictly: encoding/json alone would accept invalid
// UTF-8 and \u escapes of unpaired UTF-16 surrogates (replacing both with U+FFFD, so that
// different inputs become one value), duplicate keys (keeping the last), and nesting as deep as
// the body is long. A SCIM server must refuse all of them rather than guess.
package strictjson

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// MaxDepth bounds nesting; SCIM resources and PATCH bodies nest five levels at most.
const MaxDepth = 32

// Error says why a body was refused, in words fit for a client: it never quotes the body.
type Error struct{ Detail string }

func (e *Error) Error() string { return e.Detail }

var (
	errUTF8   = &Error{"the request body is not valid UTF-8"}
	errSyntax = &Error{"the request body is not well-formed JSON"}
	errDepth  = &Error{"the request body is nested too deeply"}
	errDup    = &Error{"the request body repeats a key in one object"}
	errObject = &Error{"the request body must be a JSON object"}
	errHalf   = &Error{"the request body escapes half of a UTF-16 surrogate pair without the other half"}
)

// Check refuses invalid UTF-8, malformed JSON, unpaired surrogate escapes, nesting beyond
// MaxDepth and duplicate keys.
func Check(raw []byte) error {
	if !utf8.Valid(raw) {
		return errUTF8
	}
	if !json.Valid(raw) {
		return errSyntax
	}
	return scan(raw)
}

// DecodeObject checks raw and decodes it as one JSON object, numbers as json.Number.
func DecodeObject(raw []byte) (map[string]any, error) {
	v, err := Decode(raw)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errObject
	}
	return m, nil
}

// Decode checks raw and decodes it as one JSON value, numbers as json.Number.
func Decode(raw []byte) (any, error) {
	if v, ok := decodeFast(raw); ok {
		return v, nil
	}
	return decodeGeneral(raw)
}

// decodeGeneral is Decode for any input: Check's passes, then encoding/json.
func decodeGeneral(raw []byte) (any, error) {
	if err := Check(raw); err != nil {
		return nil, err
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, errSyntax
	}
	return v, nil
}

// frame is an open object or array during the scan.
type frame struct {
	object    bool
	expectKey bool
	keys      []string            // an object's first keys: SCIM objects are small
	many      map[string]struct{} // all its keys, once there are more than fewKeys
}

const fewKeys = 16

// add records key, reporting false when the object already has it.
func (f *frame) add(key string) bool {
	if f.many != nil {
		if _, dup := f.many[key]; dup {
			return false
		}
		f.many[key] = struct{}{}
		return true
	}
	for _, k := range f.keys {
		if k == key {
			return false
		}
	}
	f.keys = append(f.keys, key)
	if len(f.keys) > fewKeys {
		f.many = make(map[string]struct{}, 2*len(f.keys))
		for _, k := range f.keys {
			f.many[k] = struct{}{}
		}
		f.keys = nil
	}
	return true
}

// scan walks valid JSON once, tracking nesting and each object's keys.
func scan(b []byte) error {
	var stack []frame
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '{', '[':
			if len(stack) == MaxDepth {
				return errDepth
			}
			stack = append(stack, frame{object: b[i] == '{', expectKey: b[i] == '{'})
		case '}', ']':
			stack = stack[:len(stack)-1]
		case ',':
			if n := len(stack); n > 0 && stack[n-1].object {
				stack[n-1].expectKey = true
			}
		case '"':
			end, err := stringEnd(b, i+1)
			if err != nil {
				return err
			}
			if n := len(stack); n > 0 && stack[n-1].expectKey {
				key, err := unquote(b[i : end+1])
				if err != nil {
					return errSyntax
				}
				f := &stack[n-1]
				if !f.add(key) {
					return errDup
				}
				f.expectKey = false
			}
			i = end
		}
	}
	return nil
}

// stringEnd returns the index of the quote closing the string that starts at from. It refuses
// a \u escape of half a surrogate pair that is not followed, or preceded, by the other half.
func stringEnd(b []byte, from int) (int, error) {
	for j := from; j < len(b); j++ {
		switch b[j] {
		case '\\':
			n := escapeLen(b[j:])
			if n == 0 { // json.Valid has passed: the escape is half a pair
				return 0, errHalf
			}
			j += n - 1
		case '"':
			return j, nil
		}
	}
	return len(b) - 1, nil
}

func isLowHalf(r rune) bool { return r >= 0xdc00 && r < 0xe000 }

func unquote(q []byte) (string, error) {
	if bytes.IndexByte(q, '\\') < 0 {
		return string(q[1 : len(q)-1]), nil
	}
	var s string
	err := json.Unmarshal(q, &s)
	return s, err
}
