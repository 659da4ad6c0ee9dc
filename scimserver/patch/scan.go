package patch

import (
	"bytes"
	"encoding/json"

	"github.com/scimserver/scimserver/strictjson"
)

// Splitting JSON that checkJSON has passed, without encoding/json's tokenizer: the body is known
// to be well formed, so finding where each value ends is all that is left to do.

type field struct {
	key string
	raw json.RawMessage
}

// objectFields splits a JSON object into its fields in order; ok is false if raw is not an object.
func objectFields(raw json.RawMessage) (fields []field, ok bool) {
	ok = elements(raw, '{', func(b []byte, i int) int {
		end := valueEnd(b, i)
		key, _ := stringOf(b[i:end])
		i = skipSpace(b, end) + 1 // past the colon
		i = skipSpace(b, i)
		end = valueEnd(b, i)
		fields = append(fields, field{key: key, raw: b[i:end]})
		return end
	})
	return fields, ok
}

// arrayElements splits a JSON array into its elements; ok is false if raw is not an array.
func arrayElements(raw json.RawMessage) (elems []json.RawMessage, ok bool) {
	ok = elements(raw, '[', func(b []byte, i int) int {
		end := valueEnd(b, i)
		elems = append(elems, b[i:end])
		return end
	})
	return elems, ok
}

// elements calls each for every member of the object or array (open) that raw holds, with the
// index where the member starts; each returns where it ends.
func elements(raw []byte, open byte, each func(b []byte, i int) int) bool {
	i := skipSpace(raw, 0)
	if i >= len(raw) || raw[i] != open {
		return false
	}
	for i = skipSpace(raw, i+1); i < len(raw) && raw[i] != open+2; { // '{'+2 is '}', '['+2 is ']'
		i = skipSpace(raw, each(raw, i))
		if i < len(raw) && raw[i] == ',' {
			i = skipSpace(raw, i+1)
		}
	}
	return true
}

// valueEnd is the index just past the value that starts at i.
func valueEnd(b []byte, i int) int {
	depth := 0
	for ; i < len(b); i++ {
		switch b[i] {
		case '"':
			for i++; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
		case '{', '[':
			depth++
			continue
		case '}', ']':
			if depth == 0 { // the end of the container around a number or literal
				return i
			}
			depth--
		case ',', ' ', '\t', '\n', '\r', ':':
			if depth == 0 {
				return i
			}
			continue
		default:
			continue
		}
		if depth == 0 {
			return i + 1
		}
	}
	return i
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringOf reads a JSON string; null reads as "". ok is false for any other value.
func stringOf(raw json.RawMessage) (s string, ok bool) {
	switch {
	case string(raw) == "null":
		return "", true
	case len(raw) < 2 || raw[0] != '"':
		return "", false
	case bytes.IndexByte(raw, '\\') < 0:
		return string(raw[1 : len(raw)-1]), true
	}
	return s, json.Unmarshal(raw, &s) == nil
}

// decode decodes a JSON value, keeping numbers as json.Number; an absent value (nil raw) decodes
// to nil.
func decode(raw json.RawMessage) any {
	v, err := strictjson.Decode(raw)
	if err != nil {
		return nil
	}
	return v
}

func first(elems []json.RawMessage) json.RawMessage {
	if len(elems) == 0 {
		return nil
	}
	return elems[0]
}
