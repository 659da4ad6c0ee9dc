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
		if ok != wantOK || !reflect.DeepEqual(compactFields(fields), compactFields(wantFields)) {
			t.Fatalf("%q: fields %q (%v), encoding/json %q (%v)", s, fields, ok, wantFields, wantOK)
		}
		elems, ok := arrayElements(raw)
		var wantElems []json.RawMessage
		wantOK = json.Unmarshal(raw, &wantElems) == nil && bytes.HasPrefix(bytes.TrimLeft(raw, " \t\r\n"), []byte("["))
		if ok != wantOK || len(elems) != len(wantElems) {
			t.Fatalf("%q: elements %q (%v), encoding/json %q (%v)", s, elems, ok, wantElems, wantOK)
		}
		for i := range elems {
			if !bytes.Equal(compactJSON(elems[i]), compactJSON(wantElems[i])) {
				t.Fatalf("%q: element %d is %q, encoding/json %q", s, i, elems[i], wantElems[i])
			}
		}
		str, ok := stringOf(bytes.TrimSpace(raw))
		var wantStr *string
		wantOK = json.Unmarshal(raw, &wantStr) == nil
		if wantOK && wantStr == nil {
			wantStr = new(string) // null reads as ""
		}
		if ok != wantOK || ok && str != *wantStr {
			t.Fatalf("%q: string %q (%v), encoding/json %v (%v)", s, str, ok, wantStr, wantOK)
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

func compactFields(fields []field) []field {
	out := make([]field, len(fields))
	for i, f := range fields {
		out[i] = field{key: f.key, raw: compactJSON(f.raw)}
	}
	return out
}

func compactJSON(raw []byte) []byte {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return append([]byte("invalid:"), raw...)
	}
	return b.Bytes()
}
