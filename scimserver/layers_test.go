package scimserver

import (
	"go/build"
	"strings"
	"testing"
)

const module = "github.com/scimserver/scimserver/"

// TestLayers keeps data flowing one way: the domain knows neither HTTP nor any storage engine,
// and engines know nothing of the domain. It reads what the project's own packages import.
func TestLayers(t *testing.T) {
	const mod = module
	for _, c := range []struct {
		pkg       string
		forbidden []string
	}{
		{mod + "scimserver", []string{"net/http", mod + "scimserver/httpapi", mod + "storage/", "go.etcd.io/bbolt", "github.com/jackc/"}},
		{mod + "storage", []string{mod + "scimserver", "go.etcd.io/bbolt", "github.com/jackc/"}},
		{mod + "storage/bolt", []string{mod + "scimserver", "net/http"}},
		{mod + "storage/postgres", []string{mod + "scimserver", "net/http", "go.etcd.io/bbolt"}},
	} {
		for _, dep := range deps(t, c.pkg) {
			for _, f := range c.forbidden {
				if dep == f || strings.HasSuffix(f, "/") && strings.HasPrefix(dep, f) {
					t.Errorf("%s imports %s", c.pkg, dep)
				}
			}
		}
	}
}

// deps lists what pkg and the project's packages it imports import, leaving out tests.
func deps(t *testing.T, pkg string) []string {
	t.Helper()
	seen := map[string]bool{}
	var walk func(string)
	walk = func(path string) {
		p, err := build.Import(path, ".", 0)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for _, imp := range p.Imports {
			if !seen[imp] {
				seen[imp] = true
				if strings.HasPrefix(imp, module) {
					walk(imp)
				}
			}
		}
	}
	walk(pkg)
	var out []string
	for p := range seen {
		out = append(out, p)
	}
	return out
}
