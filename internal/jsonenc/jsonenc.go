// Package jsonenc appends JSON values as encoding/json writes them, without its reflection, for
// the values written on every request or every commit.
package jsonenc

import "encoding/json"

// AppendString appends s as json.Marshal writes a string. Plain printable ASCII (ids, names,
// locations, ETags) is copied as is; anything else goes through json.Marshal.
func AppendString(b []byte, s string) []byte {
	start := len(b)
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || c >= 0x7f || c == '<' || c == '>' || c == '&':
			raw, _ := json.Marshal(s) // a string always encodes
			return append(b[:start], raw...)
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
