package patch

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/scimserver/scimserver/strictjson"
)

// FuzzSplit holds the splitting of checked JSON to what encoding/json's tokenizer makes of it:
// the same fields in the same order, the same elements, the same strings.
func FuzzSplit(f *testing.F) {
	for _, s := range append(realBodies, `{"a" : [1, {"b":"]}"}, "\"x\\"] , "c":null,"d":-1.5e3,"e":true}`, `[ 1 ,"a", [] ,{}]`, `"\u00e9\n"`, `null`, `7`) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		raw := []byte(s)
		if strictjson.Check(raw) != nil {
			return
		}
		fields, ok := objectFields(raw)
		wantFields, wantOK := tokenizedFields(raw)
		if ok != wantOK || !reflect.DeepEqual(fields, wantFields) {
			t.Fatalf("%q: fields %q (%v), encoding/json %q (%v)", s, fields, ok, wantFields, wantOK)
		}
		elems, ok := arrayElements(raw)
		var wantElems []json.RawMessage
		wantOK = json.Unmarshal(raw, &wantElems) == nil && bytes.HasPrefix(bytes.TrimLeft(raw, " \t\r\n"), []byte("["))
		if ok != wantOK || len(elems) != len(wantElems) {
			t.Fatalf("%q: elements %q (%v), encoding/json %q (%v)", s, elems, ok, wantElems, wantOK)
		}
		pieces := []json.RawMessage{raw}
		for i := range elems {
			if !bytes.Equal(elems[i], wantElems[i]) {
				t.Fatalf("%q: element %d is %q, encoding/json %q", s, i, elems[i], wantElems[i])
			}
			pieces = append(pieces, elems[i])
		}
		for _, f := range fields {
			pieces = append(pieces, f.raw)
		}
		// What the parser reads as strings (op, path, schemas) are the pieces as split.
		for i, piece := range pieces {
			if i == 0 {
				piece = bytes.TrimSpace(piece) // the whole input, with its surrounding space
			}
			str, ok := stringOf(piece)
			var want *string
			wantOK := json.Unmarshal(piece, &want) == nil
			if wantOK && want == nil {
				want = new(string) // null reads as ""
			}
			if ok != wantOK || ok && str != *want {
				t.Fatalf("%q: string of %q is %q (%v), encoding/json %v (%v)", s, piece, str, ok, want, wantOK)
			}
		}
	})
}

// tokenizedFields splits an object with encoding/json's tokenizer.
func tokenizedFields(raw []byte) (fields []field, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	for dec.More() {
		tok, err := dec.Token()
		key, isKey := tok.(string)
		var v json.RawMessage
		if err != nil || !isKey || dec.Decode(&v) != nil {
			return nil, false
		}
		fields = append(fields, field{key: key, raw: v})
	}
	return fields, true
}
