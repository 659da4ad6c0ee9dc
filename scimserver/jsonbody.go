package scimserver

import (
	"github.com/scimserver/scimserver/scimserver/strictjson"
)

// decodeObject parses a request body strictly (valid UTF-8, one JSON object, no duplicate
// keys, bounded nesting, numbers kept as written): a refusal is 400 invalidSyntax.
func decodeObject(raw []byte) (map[string]any, error) {
	m, err := strictjson.DecodeObject(raw)
	if err != nil {
		return nil, badRequest("invalidSyntax", err.Error())
	}
	return m, nil
}
