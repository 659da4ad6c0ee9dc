package scimserver

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scimserver/scimserver/storage"
)

// interposing is a store that runs before() ahead of the next write once armed: a change that
// commits between a write's snapshot and its commit.
type interposing struct {
	storage.Store
	armed  atomic.Bool
	before func()
}

func (w *interposing) Write(ctx context.Context, tenant string, fn func(storage.Tx) error) error {
	if w.armed.CompareAndSwap(true, false) {
		w.before()
	}
	return w.Store.Write(ctx, tenant, fn)
}

// TestWriteAnswerSeesFactsOfItsCommit: an interaction that commits after a PATCH was worked out on
// a snapshot and before the PATCH commits changes the user's facts but not its version; the
// answer, rendered from the write, must still show them, as a read right after does.
func TestWriteAnswerSeesFactsOfItsCommit(t *testing.T) {
	base, store := newService(t)
	id := create(t, base, base.users, map[string]any{"userName": "facts@example.com", "displayName": "Before"})
	w := &interposing{Store: store}
	s := New(w, Options{})
	w.before = func() {
		if err := s.RecordInteraction(bg, DefaultTenant, testActor, id, "login", time.Time{}); err != nil {
			t.Error(err)
		}
	}
	view := View{Base: "https://scim.example.com/scim/v2"}
	for _, c := range []struct {
		name string
		do   func() (Resource, error)
	}{
		{"PATCH", func() (Resource, error) {
			return s.Patch(bg, DefaultTenant, testActor, s.users, id,
				[]byte(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"displayName","value":"After"}]}`), Conditions{}, view.Base, &view)
		}},
		{"PUT", func() (Resource, error) {
			return s.Replace(bg, DefaultTenant, testActor, s.users, id,
				[]byte(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"facts@example.com","displayName":"Put"}`), Conditions{}, &view)
		}},
	} {
		w.armed.Store(true)
		res, err := c.do()
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if w.armed.Load() {
			t.Fatalf("%s: nothing was interposed", c.name)
		}
		got, err := s.Get(bg, DefaultTenant, s.users, id, view, Conditions{})
		if err != nil {
			t.Fatal(err)
		}
		if string(res.JSON) != string(got.JSON) || res.Version != got.Version {
			t.Errorf("%s answered %d %s\nread after: %d %s", c.name, res.Version, res.JSON, got.Version, got.JSON)
		}
	}
}
