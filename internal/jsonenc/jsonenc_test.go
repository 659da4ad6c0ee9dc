package jsonenc

import (
	"encoding/json"
	"testing"
)

// strings worth a look: locations and ETags (the fast path), and every kind of byte it hands on.
var samples = []string{"", "https://scim.example.com/scim/v2/Users/0192", `W/"12"`, `a\b`, `"\`, "<a&b>", "é", "\u2028",
	"tab\there", "\x00", "\x1f", "\x7f", "~ !#$%'()*+,-./:;=?@[]^_`{|}", "\xff", "\xed\xa0\x80"}

// TestAppendStringIsJSONMarshal: the string appender writes exactly what json.Marshal writes.
func TestAppendStringIsJSONMarshal(t *testing.T) {
	for _, s := range samples {
		want, _ := json.Marshal(s)
		if got := AppendString([]byte("x"), s); string(got) != "x"+string(want) {
			t.Errorf("%q: %s, json.Marshal %s", s, got, want)
		}
	}
}

// FuzzAppendString: the same, for any string.
func FuzzAppendString(f *testing.F) {
	for _, s := range samples {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendString([]byte("x"), s); string(got) != "x"+string(want) {
			t.Fatalf("%q: %s, json.Marshal %s", s, got, want)
		}
	})
}
