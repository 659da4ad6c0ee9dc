package strictjson

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	deep := strings.Repeat(`{"a":`, MaxDepth+1) + "1" + strings.Repeat("}", MaxDepth+1)
	ok := strings.Repeat(`{"a":`, MaxDepth) + "1" + strings.Repeat("}", MaxDepth)
	for _, c := range []struct {
		in   string
		want error
	}{
		{`{"a":1,"b":{"a":2},"c":[{"a":1},{"a":2}]}`, nil},
		{`{"a":"x","b":"a"}`, nil},
		{`{"a\"b":1,"a\\b":2}`, nil},
		{`{"key \u0041":1,"key A":2}`, errDup},
		{`{"a":1,"a":2}`, errDup},
		{`{"o":{"x":1,"x":2}}`, errDup},
		{`[{"x":1},{"x":1}]`, nil},
		{`{"a":"\"a\":1","a":2}`, errDup},
		{"{\"a\":\"\xff\"}", errUTF8},
		{`{"a":`, errSyntax},
		{`{"a":1}x`, errSyntax},
		{deep, errDepth},
		{ok, nil},
		{strings.Repeat("[", 10000) + strings.Repeat("]", 10000), errDepth},
		{`{"a":"\ud83d\ude00 \uD83D\uDE00 \u00e9 \\ud800 \"\\"}`, nil},
		{`{"a":"a\ud800@x"}`, errHalf},
		{`{"a":"a\udc00"}`, errHalf},
		{`{"a":"\uDBFF"}`, errHalf},
		{`{"a":"\ud800\u0041"}`, errHalf},
		{`{"a":"\ud800\ud800"}`, errHalf},
		{`{"a":"\ude00\ud83d"}`, errHalf},
		{`{"a":"\ud800\n"}`, errHalf},
		{`{"\ud800":1}`, errHalf},
		{`{"a":["x","\u0000\ud800"]}`, errHalf},
		{`{"a":"\\\ud800"}`, errHalf},
	} {
		if got := Check([]byte(c.in)); got != c.want {
			t.Errorf("Check(%.40q) = %v, want %v", c.in, got, c.want)
		}
	}
	var many strings.Builder
	many.WriteString("{")
	for i := 0; i < 100_000; i++ {
		fmt.Fprintf(&many, `"%d":0,`, i)
	}
	if err := Check([]byte(many.String() + `"5":1}`)); err != errDup {
		t.Errorf("a repeated key among 100,000: %v", err)
	}
	if err := Check([]byte(many.String() + `"x":1}`)); err != nil {
		t.Errorf("100,000 distinct keys: %v", err)
	}
	if _, err := DecodeObject([]byte(`["a"]`)); err != errObject {
		t.Errorf("array as object: %v", err)
	}
	if _, err := DecodeObject([]byte(`null`)); err != errObject {
		t.Errorf("null as object: %v", err)
	}
	m, err := DecodeObject([]byte(`{"n":1.50}`))
	if err != nil || m["n"].(interface{ String() string }).String() != "1.50" {
		t.Errorf("numbers must stay as written: %v %v", m, err)
	}
}

func FuzzCheck(f *testing.F) {
	for _, s := range []string{`{"a":1,"a":2}`, `{"a":{"b":[1,2,{"c":"\"d"}]}}`, `[[[[]]]]`, `{"\u0061":1,"a":2}`, `{"a":"\ud83d\ude00"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := Check([]byte(s))
		if err == nil {
			if _, derr := DecodeObject([]byte(s)); derr != nil && derr != errObject {
				t.Fatalf("%q passed Check but not DecodeObject: %v", s, derr)
			}
			// Nothing that passed is changed by decoding: a U+FFFD comes out only where one
			// went in, literally or escaped.
			var v any
			if json.Unmarshal([]byte(s), &v) == nil && strings.Contains(fmt.Sprint(v), "\uFFFD") &&
				!strings.Contains(s, "\uFFFD") && !strings.Contains(strings.ToLower(s), `\ufffd`) {
				t.Fatalf("%q passed Check but decodes with a replacement character", s)
			}
		}
	})
}

// FuzzDecodeFast: the one-pass decoder accepts only what the general path accepts, and decodes
// it to the same value; and the bodies it is for do take it.
func FuzzDecodeFast(f *testing.F) {
	for _, s := range []string{
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"a@b.c","name":{"givenName":"A"},"active":true,"emails":[{"value":"a@b.c","primary":false}],"x":null}`,
		`{"n":-0.5e+10,"m":0,"k":[1,2.0,3E2]}`, `{"a":1,"a":2}`, `{"a":"\u00e9"}`, `{"a":"é"}`, ` {"a":[[[]]]} `, `{"a":01}`,
		`{"a":1}x`, `[]`, `{"a":"` + "\xff" + `"}`, `{"a":"\ud800"}`, `{"a":tru}`, `{"a":-}`, `{"a":1.}`, `{"a":1e}`,
		`{"a":"\ud83d\ude00\n\"\\\/\b\f\r\t"}`, `{"\u0061":1,"a":2}`, `"\udc00"`, `"\ud83dx"`, `"\ud83d\u0041"`, `"\x"`, `"\u12"`, `"\`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fast, ok := decodeFast([]byte(s))
		general, err := decodeGeneral([]byte(s))
		if !ok {
			return
		}
		if err != nil {
			t.Fatalf("%q: the fast path accepts it, the general one refuses it: %v", s, err)
		}
		if !reflect.DeepEqual(fast, general) {
			t.Fatalf("%q: the fast path decodes %#v, the general one %#v", s, fast, general)
		}
	})
}

func TestDecodeFastTakesTypicalBodies(t *testing.T) {
	for _, s := range []string{
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"bjensen@example.com","name":{"givenName":"Barbara","familyName":"Jensen"},"emails":[{"value":"bjensen@example.com","type":"work","primary":true}],"active":true}`,
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":"False"}]}`,
		"{\n  \"displayName\": \"Group A\",\n  \"members\": []\n}",
		`{"department":"R\u0026D","displayName":"\"Q\" \\ \u00e9 \ud83d\ude00"}`, // as json.Marshal stores them
	} {
		if _, ok := decodeFast([]byte(s)); !ok {
			t.Errorf("%s: the fast path gave up", s)
		}
	}
	for _, s := range []string{`{"a":1,"a":2}`, `{"a":1} {}`, `{"a":01}`, `{"a":"\ud800"}`, `{"a\u0000":1,"a\u0000":2}`} {
		if _, ok := decodeFast([]byte(s)); ok {
			t.Errorf("%s: the fast path took it", s)
		}
	}
}
