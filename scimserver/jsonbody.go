package scimserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"unicode/utf8"
)

// maxDepth bounds JSON nesting; SCIM resources nest three levels at most.
const maxDepth = 32

var errSyntax = badRequest("invalidSyntax", "the request body is not a well-formed JSON object")

// decodeObject parses a request body strictly: valid UTF-8, one JSON object, no duplicate keys
// (encoding/json would silently keep the last), nesting bounded, numbers kept as json.Number.
func decodeObject(raw []byte) (map[string]any, error) {
	if !utf8.Valid(raw) {
		return nil, badRequest("invalidSyntax", "the request body is not valid UTF-8")
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	v, err := decodeValue(d, 0)
	if err != nil {
		return nil, err
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return nil, errSyntax
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errSyntax
	}
	return m, nil
}

func decodeValue(d *json.Decoder, depth int) (any, error) {
	if depth > maxDepth {
		return nil, badRequest("invalidSyntax", "the request body is nested too deeply")
	}
	tok, err := d.Token()
	if err != nil {
		return nil, errSyntax
	}
	switch tok {
	case json.Delim('{'):
		m := map[string]any{}
		for d.More() {
			kt, err := d.Token()
			if err != nil {
				return nil, errSyntax
			}
			k, ok := kt.(string)
			if !ok {
				return nil, errSyntax
			}
			if _, dup := m[k]; dup {
				return nil, badRequest("invalidSyntax", "the request body repeats a key")
			}
			v, err := decodeValue(d, depth+1)
			if err != nil {
				return nil, err
			}
			m[k] = v
		}
		if _, err := d.Token(); err != nil {
			return nil, errSyntax
		}
		return m, nil
	case json.Delim('['):
		a := []any{}
		for d.More() {
			v, err := decodeValue(d, depth+1)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		if _, err := d.Token(); err != nil {
			return nil, errSyntax
		}
		return a, nil
	case json.Delim('}'), json.Delim(']'):
		return nil, errSyntax
	}
	return tok, nil
}
