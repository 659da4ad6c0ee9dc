package scimserver

import (
	"testing"
	"time"
)

// TestTokenLastUsed follows a token's last use through authentications answered from the
// store and from the remembered tokens, to the second (5.5 s after the first use shows as 5 s).
func TestTokenLastUsed(t *testing.T) {
	s, _ := newService(t)
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	s.opts.Now = func() time.Time { return now }
	tok, secret, err := s.CreateToken(bg, testActor, TokenSpec{Tenant: DefaultTenant, Name: "okta"})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.TokenLastUsed(tok.ID); got != nil {
		t.Fatalf("unused token last used at %v", got)
	}
	for _, step := range []struct {
		advance time.Duration
		want    time.Time
	}{
		{0, now},                      // read from the store
		{500 * time.Millisecond, now}, // remembered; within the resolution
		{5 * time.Second, now.Add(5 * time.Second)}, // remembered; moves on, shown to the second
	} {
		now = now.Add(step.advance)
		if _, err := s.Authenticate(bg, secret); err != nil {
			t.Fatal(err)
		}
		if got := s.TokenLastUsed(tok.ID); got == nil || !got.Equal(step.want) {
			t.Errorf("after %v: last used %v, want %v", step.advance, got, step.want)
		}
	}
	if _, err := s.Authenticate(bg, "scim_wrong-0123456789abcdefghijklmnopqrstuvwxyz"); err == nil {
		t.Fatal("a wrong secret authenticated")
	}
}
