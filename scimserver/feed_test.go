package scimserver

import (
	"errors"
	"testing"
)

// TestMarkRestored: after a restore marks how far the replaced data's trail had gone, a cursor
// past the restored trail is gone (the consumer saw changes that were taken back), one within it
// reads on, stepping over the mark, and new changes take cursors past everything handed out.
func TestMarkRestored(t *testing.T) {
	s, _ := newService(t)
	create(t, s, s.users, map[string]any{"userName": "kept@example.com"})
	head, err := s.Head(bg, DefaultTenant)
	if err != nil {
		t.Fatal(err)
	}
	const lost = 5 // changes the replaced data had beyond this trail
	marked, err := s.MarkRestored(bg, map[string]uint64{DefaultTenant: head + lost, "no-such-tenant": 9})
	if err != nil || len(marked) != 2 || marked[0] != (Restored{Tenant: DefaultTenant, From: head, To: head + lost}) ||
		marked[1] != (Restored{Tenant: "no-such-tenant", To: 9, Missing: true}) {
		t.Fatalf("MarkRestored: %v %+v", err, marked)
	}
	id := create(t, s, s.users, map[string]any{"userName": "new@example.com"})

	for _, after := range []uint64{head + 1, head + lost} {
		var gone *CursorGoneError
		if _, err := s.Changes(bg, DefaultTenant, after, 10); !errors.As(err, &gone) {
			t.Errorf("cursor %d, taken back by the restore: %v", after, err)
		}
	}
	page, err := s.Changes(bg, DefaultTenant, head, 10)
	if err != nil || len(page.Changes) != 2 || page.Changes[1].ResourceID != id || page.Changes[1].Seq() <= head+lost {
		t.Fatalf("after the restored trail's head: %v %+v", err, page)
	}
	// The mark reads as a change, for a webhook whose receiver may have been sent what was taken
	// back.
	if c := page.Changes[0]; c.Operation != "restored" || c.TakenBack == nil ||
		*c.TakenBack != (CursorRange{After: FormatCursor(head), Through: FormatCursor(head + lost)}) || c.Seq() != head+lost+1 {
		t.Fatalf("the restore's mark: %+v", c)
	}
	// Data that went no further than the backup is not marked.
	if marked, err := s.MarkRestored(bg, map[string]uint64{DefaultTenant: head}); err != nil || len(marked) != 0 {
		t.Fatalf("MarkRestored behind the trail: %v %+v", err, marked)
	}
}
