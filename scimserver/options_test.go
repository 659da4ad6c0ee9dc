package scimserver

import (
	"path/filepath"
	"testing"

	"github.com/scimserver/scimserver/storage"
)

// TestBaseURLMustBeAbsolute: a base URL without a scheme would make every meta.location
// relative; New refuses it, and anything but an absolute http(s) URL.
func TestBaseURLMustBeAbsolute(t *testing.T) {
	store, err := storage.Open(filepath.Join(t.TempDir(), "d.db"), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for base, ok := range map[string]bool{
		"": true, "https://scim.example.com/scim/v2": true, "http://127.0.0.1:8080/scim/v2/": true,
		"scim.example.com": false, "scim.example.com/scim/v2": false, "/scim/v2": false, "ftp://scim.example.com/scim/v2": false,
		"https://": false, "https://scim.example.com/scim/v2?x=1": false, "https://scim.example.com/#f": false,
		"https://user:pw@scim.example.com/scim/v2": false, "https://scim example.com": false,
	} {
		if _, err := New(store, Options{BaseURL: base}); (err == nil) != ok {
			t.Errorf("base URL %q: %v", base, err)
		}
	}
}
